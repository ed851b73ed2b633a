"""The benchmark's arithmetic: rounds, medians and ratios (no servers)."""

from __future__ import annotations

import pytest

from bench import report
from bench.designs import DESIGNS
from bench.run import column_groups, one_room_at_a_time, rotated
from chat import protocol


def phase(config: str, turn: int, deliveries: float, p99: float = 1.0) -> dict:
    return {
        "kind": "phase",
        "config": config,
        "members": 50,
        "senders": 10,
        "mode": "saturate",
        "round": turn,
        "deliveries_per_second": deliveries,
        "latency_ms": {"p50": p99 / 4, "p95": p99 / 2, "p99": p99, "max": p99 * 2},
        "lost": 0,
        "duplicated": 0,
        "reordered": 0,
        "server_cpu_us_per_delivery": 20.0,
        "redis_cpu_us_per_delivery": None,
        "client_cpu_share": 0.5,
    }


def test_ratios_pair_each_round_with_the_reference_of_the_same_round():
    # The machine's speed drifts from round to round; the server under test
    # keeps 1.1x of the reference in two rounds out of three.
    rows = [
        phase("tutorial-fastapi", 0, 100), phase("chat-uvicorn", 0, 110),
        phase("tutorial-fastapi", 1, 300), phase("chat-uvicorn", 1, 330),
        phase("tutorial-fastapi", 2, 200), phase("chat-uvicorn", 2, 150),
    ]  # fmt: skip
    (chat,) = [row for row in report.phase_medians(rows) if row["config"] == "chat-uvicorn"]
    # Medians of their own would pair 150 with 200 (rounds 2 and 0): 0.75x.
    assert chat["deliveries_per_second"] == 150
    assert chat["vs_reference"] == {"median": 1.1, "min": 0.75, "max": 1.1}
    assert chat["rounds"] == 3


def test_each_column_has_its_ratio_to_the_ceiling_c_beside_its_ratio_to_a():
    rows = [
        phase("tutorial-fastapi", 0, 100, p99=4.0), phase("raw-picows", 0, 200, p99=2.0),
        phase("chat-uvicorn", 0, 150, p99=3.0),
        phase("tutorial-fastapi", 1, 300, p99=4.0), phase("raw-picows", 1, 400, p99=1.0),
        phase("chat-uvicorn", 1, 360, p99=3.0),
    ]  # fmt: skip
    cpu = {("raw-picows", 0): 8.0, ("chat-uvicorn", 0): 20.0, ("raw-picows", 1): 12.0,
           ("chat-uvicorn", 1): 20.0}  # fmt: skip
    for row in rows:
        row["server_cpu_us_per_delivery"] = cpu.get((row["config"], row["round"]), 30.0)
    medians = {row["config"]: row for row in report.phase_medians(rows)}
    chat = medians["chat-uvicorn"]
    assert chat["vs_reference"] == {"median": 1.35, "min": 1.2, "max": 1.5}
    assert chat["vs_ceiling"] == {"median": 0.825, "min": 0.75, "max": 0.9}
    assert chat["p99_vs_ceiling"] == {"median": 2.25, "min": 1.5, "max": 3.0}
    assert medians["raw-picows"]["vs_ceiling"]["median"] == 1.0
    # Server CPU per delivery: (c)'s over the column's, round by round.
    assert chat["cpu_vs_ceiling"] == {"median": 0.5, "min": 0.4, "max": 0.6}
    assert medians["tutorial-fastapi"]["vs_ceiling"] == {"median": 0.625, "min": 0.5, "max": 0.75}
    table = report.markdown(rows)
    assert "| deliveries/s | vs (a) | range | vs (c) | range | p50 ms |" in table
    row = "| chat-uvicorn | 50 | 10 | saturate | 255 | 1.35x | 1.20-1.50 | 0.82x | 0.75-0.90 |"
    assert row in table
    assert "| p99 vs (a) | range | p99 vs (c) | range | lost |" in table
    assert "| 0.75x | 0.75-0.75 | 2.25x | 1.50-3.00 | 0 | 0 | 0 | 20 | 0.50x | 0.40-0.60 |" in table
    # Without the recovery-off column there is no recovery table to give.
    assert "chat-uvicorn-norecovery" not in table


def test_the_joins_are_compared_with_a_and_c_round_by_round():
    def joined(config: str, turn: int, seconds: float) -> dict:
        return {
            "kind": "join", "config": config, "members": 50, "round": turn,
            "join_seconds": seconds, "join_server_cpu_seconds": seconds / 2,
            "join_client_cpu_share": 0.5, "rss_kib_per_connection": 20.0,
            "first_use_rss_kib": 100,
        }  # fmt: skip

    rows = [
        joined("tutorial-fastapi", 0, 1.0), joined("raw-picows", 0, 0.5),
        joined("chat-uvicorn", 0, 1.0), joined("tutorial-fastapi", 1, 2.0),
        joined("raw-picows", 1, 0.5), joined("chat-uvicorn", 1, 1.5),
    ]  # fmt: skip
    medians = {row["config"]: row for row in report.join_medians(rows)}
    assert medians["chat-uvicorn"]["vs_reference"] == {"median": 0.875, "min": 0.75, "max": 1.0}
    assert medians["chat-uvicorn"]["vs_ceiling"] == {"median": 2.5, "min": 2.0, "max": 3.0}
    table = report.markdown(rows)
    assert "| join s | vs (a) | range | vs (c) | range | server CPU s |" in table
    assert "| chat-uvicorn | 50 | 1.25 | 0.88x | 0.75-1.00 | 2.50x | 2.00-3.00 | 0.625 |" in table


def test_a_run_made_before_the_ceiling_existed_reads_back_with_dashes_for_c(tmp_path):
    # A phase-median row as written before (c): no vs_ceiling, no p99_vs_ceiling.
    old_median = {"kind": "phase-median", "config": "chat-uvicorn", "vs_reference": {}}
    rows = [phase("tutorial-fastapi", 0, 100), phase("chat-uvicorn", 0, 120)]
    path = tmp_path / "old.jsonl"
    with path.open("w") as out:
        report.write_jsonl([*rows, old_median], out)
    table = report.markdown(report.read_jsonl(path))
    assert "| chat-uvicorn | 50 | 10 | saturate | 120 | 1.20x | 1.20-1.20 | - | - |" in table


def test_the_table_gives_each_percentile_as_the_median_over_rounds():
    rows = [phase("chat-uvicorn", 0, 100, p99=8.0), phase("chat-uvicorn", 1, 100, p99=4.0),
            phase("chat-uvicorn", 2, 100, p99=12.0)]  # fmt: skip
    (chat,) = report.phase_medians(rows)
    assert chat["latency_ms"] == {"p50": 2.0, "p95": 4.0, "p99": 8.0, "max": 24.0}
    assert "| 2 | 4 | 8 | 24 |" in report.markdown(rows)


def test_a_written_run_reads_back_to_the_same_table(tmp_path):
    rows = [
        {"kind": "conditions", "time": "now"},
        phase("tutorial-fastapi", 0, 100), phase("chat-uvicorn", 0, 120),
        phase("tutorial-fastapi", 1, 200), phase("chat-uvicorn", 1, 180),
    ]  # fmt: skip
    path = tmp_path / "bench.jsonl"
    with path.open("w") as out:
        # As bench.run writes a run: its rows, then what the report derived.
        report.write_jsonl(rows + report.phase_medians(rows) + report.join_medians(rows), out)
    read = report.read_jsonl(path)
    assert [row["kind"] for row in read] == [row["kind"] for row in rows]
    assert report.markdown(read) == report.markdown(rows)


def test_lost_duplicated_and_reordered_add_up_over_rounds():
    rows = [phase("chat-uvicorn", turn, 100) for turn in range(3)]
    rows[1]["lost"] = 2
    rows[2]["reordered"] = 1
    (chat,) = report.phase_medians(rows)
    assert (chat["lost"], chat["duplicated"], chat["reordered"]) == (2, 0, 1)
    # Without a reference there is no ratio to give, and the table says so.
    assert chat["vs_reference"]["median"] is None
    assert "| chat-uvicorn | 50 | 10 | saturate | 100 | - | - |" in report.markdown(rows)


def test_the_redis_column_is_compared_with_the_in_process_one_round_by_round():
    rows = [
        phase("chat-uvicorn", 0, 100, p99=2.0), phase("chat-uvicorn-redis", 0, 80, p99=3.0),
        phase("chat-uvicorn", 1, 50, p99=4.0), phase("chat-uvicorn-redis", 1, 45, p99=4.0),
    ]  # fmt: skip
    (ratio,) = report.redis_ratios(rows)
    assert ratio["deliveries"] == {"median": 0.85, "min": 0.8, "max": 0.9}
    assert ratio["p99"] == {"median": 1.25, "min": 1.0, "max": 1.5}
    assert "| | 50 | 10 | saturate | 0.85x | 0.80-0.90 | 1.25x | 1.00-1.50 |" in (
        report.markdown(rows)
    )


def test_the_metrics_column_is_compared_with_the_same_build_counting_nothing():
    rows = [
        phase("chat-uvicorn", 0, 100), phase("chat-uvicorn-metrics", 0, 98),
        phase("chat-uvicorn", 1, 50), phase("chat-uvicorn-metrics", 1, 50),
    ]  # fmt: skip
    (ratio,) = report.metrics_ratios(rows)
    assert ratio["kind"] == "metrics-ratio"
    assert ratio["deliveries"] == {"median": 0.99, "min": 0.98, "max": 1.0}
    table = report.markdown(rows)
    assert "| chat-uvicorn-metrics vs chat-uvicorn |" in table
    assert "| | 50 | 10 | saturate | 0.99x | 0.98-1.00 |" in table
    assert not report.redis_ratios(rows)


@pytest.mark.parametrize(("turn", "expected"), [(0, "abc"), (1, "bca"), (2, "cab"), (3, "abc")])
def test_each_round_starts_with_another_column(turn, expected):
    assert "".join(rotated(list("abc"), turn)) == expected


def test_columns_that_do_not_fit_at_once_run_in_groups_each_with_its_own_references():
    references = ["tutorial-fastapi", "raw-picows"]
    servers = [*references, "b", "c", "d", "e"]
    assert column_groups(servers, 50, 20_000) == [servers]
    assert column_groups(servers, 5000, 25_256) == [
        [*references, "b", "c", "d"],
        [*references, "e"],
    ]
    assert column_groups(servers, 5000, 20_000) == [[*references, other] for other in "bcde"]
    # Without (c), as a run of an older checkout's rows would be grouped.
    assert column_groups(["tutorial-fastapi", "b", "c"], 5000, 15_256) == [
        ["tutorial-fastapi", "b", "c"]
    ]


def test_rooms_that_fit_only_one_at_a_time_run_as_one_group():
    """10,000 members under a hard limit of 20,000 files: one room open at a time."""
    servers = ["tutorial-fastapi", "raw-picows", "chat-uvicorn", "chat-uvicorn-redis"]
    assert one_room_at_a_time(servers, 10_000, 20_000)
    assert column_groups(servers, 10_000, 20_000) == [servers]
    assert not one_room_at_a_time(servers, 5000, 20_000)
    assert not one_room_at_a_time(servers, 10_000, 40_256)
    with pytest.raises(SystemExit, match="needs 20256 open files"):
        column_groups(servers, 20_000, 20_000)


def join(config: str, turn: int, seconds: float) -> dict:
    return {
        "kind": "join",
        "config": config,
        "members": 10_000,
        "round": turn,
        "join_seconds": seconds,
        "join_server_cpu_seconds": seconds / 2,
        "join_redis_cpu_seconds": None,
        "join_client_cpu_share": 0.5,
        "rss_kib_per_connection": 26.0,
        "first_use_rss_kib": 1000,
    }


def test_the_redis_join_storm_is_compared_with_the_in_process_one_round_by_round():
    rows = [
        join("chat-uvicorn", 0, 10.0), join("chat-uvicorn-redis", 0, 14.0),
        join("chat-uvicorn", 1, 8.0), join("chat-uvicorn-redis", 1, 12.0),
        join("chat-uvicorn", 2, 10.0), join("chat-uvicorn-redis", 2, 12.0),
    ]  # fmt: skip
    (ratio,) = report.redis_join_ratios(rows)
    assert ratio == {
        "kind": "redis-join-ratio",
        "members": 10_000,
        "join_seconds": {"median": 1.4, "min": 1.2, "max": 1.5},
    }
    assert "| | 10000 | 1.40x | 1.20-1.50 |" in report.markdown(rows)
    assert not report.redis_join_ratios([row for row in rows if row["config"] == "chat-uvicorn"])


def test_ratios_pair_rows_of_the_same_group():
    rows = [
        {**phase("tutorial-fastapi", 0, 100), "group": 0},
        {**phase("raw-picows", 0, 200), "group": 0},
        {**phase("chat-uvicorn", 0, 110), "group": 0},
        {**phase("tutorial-fastapi", 0, 300), "group": 1},
        {**phase("raw-picows", 0, 600), "group": 1},
        {**phase("chat-daphne", 0, 150), "group": 1},
    ]
    medians = {row["config"]: row for row in report.phase_medians(rows)}
    assert medians["chat-uvicorn"]["vs_reference"]["median"] == 1.1
    assert medians["chat-uvicorn"]["vs_ceiling"]["median"] == 0.55
    assert medians["chat-daphne"]["vs_reference"]["median"] == 0.5
    assert medians["chat-daphne"]["vs_ceiling"]["median"] == 0.25


def test_the_generator_knows_a_joined_frame_by_its_first_bytes():
    """The generator does not parse the member lists of a storm: the chat writes `type` first."""
    chat = DESIGNS["chat"]
    joined = protocol.joined_frame(
        room="r", name="a", members_json=b'["a"]', epoch="e", offset=0, resume="t"
    )
    assert chat.is_joined(protocol.encode(joined).encode())
    presence = protocol.presence_frame(event="join", name="joined", count=2)
    assert not chat.is_joined(protocol.encode(presence).encode())


def test_metrics_cost_times_each_way_of_counting():
    from bench.metrics_cost import measure

    timings = measure(calls=1000, repeats=1)
    assert len(timings) == 4 and all(nanoseconds > 0 for nanoseconds in timings.values())
