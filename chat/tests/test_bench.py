"""Smoke test of `make bench`: one tiny cell, so the harness cannot rot unnoticed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from chat.testing.servers import PROJECT_DIR

pytestmark = pytest.mark.server


def run_bench(out, *args: str) -> list[dict]:
    """`python -m bench.run ARGS --out OUT`; the rows of its JSON lines."""
    subprocess.run(
        [sys.executable, "-m", "bench.run", *args, "--out", str(out)],
        cwd=PROJECT_DIR,
        check=True,
        capture_output=True,
        timeout=180,
    )
    (results,) = out.glob("bench-*.jsonl")
    return [json.loads(line) for line in results.read_text().splitlines()]


def test_bench_harness_runs_one_tiny_cell_in_rounds(tmp_path):
    rows = run_bench(
        tmp_path, "--sizes", "3", "--senders", "1", "--seconds", "0.3",
        "--rate-seconds", "0.3", "--rounds", "2", "--servers", "chat-uvicorn",
    )  # fmt: skip
    phases = [row for row in rows if row["kind"] == "phase"]
    configs = ("tutorial-fastapi", "raw-picows", "chat-uvicorn")
    assert {row["config"] for row in phases} == set(configs)
    for config in configs:
        runs = sorted(
            (row["mode"].split()[0], row["round"]) for row in phases if row["config"] == config
        )
        assert runs == [("rate", 0), ("rate", 1), ("saturate", 0), ("saturate", 1)], config
    # One fixed rate for every column and round: half of (a)'s median peak.
    assert len({row["mode"] for row in phases if row["mode"] != "saturate"}) == 1
    for row in phases:
        assert row["sent"] > 0 and row["delivered"] == row["expected"] == row["sent"] * 2, row
        assert (row["lost"], row["duplicated"], row["reordered"]) == (0, 0, 0), row
    joins = [row for row in rows if row["kind"] == "join"]
    assert sorted((row["config"], row["round"]) for row in joins) == sorted(
        (config, turn) for config in configs for turn in (0, 1)
    )
    medians = [row for row in rows if row["kind"] == "phase-median"]
    assert len(medians) == 6 and all(row["rounds"] == 2 for row in medians)
    for row in medians:
        assert row["vs_reference"]["median"] and row["vs_ceiling"]["median"], row
    table = next(tmp_path.glob("bench-*.md")).read_text()
    assert "| chat-uvicorn | 3 | 1 | saturate |" in table
    assert "| raw-picows | 3 | 1 | saturate |" in table
    assert "| chat-uvicorn | 3 | " in table.split("| join s | vs (a) |")[1]


def test_bench_light_adds_a_fixed_rate_phase_of_its_own(tmp_path):
    rows = run_bench(
        tmp_path, "--sizes", "3", "--senders", "1", "--seconds", "0.3", "--rate-seconds", "0.5",
        "--rounds", "1", "--servers", "chat-uvicorn", "--no-rate", "--light", "20",
    )  # fmt: skip
    modes = sorted((row["config"], row["mode"]) for row in rows if row["kind"] == "phase")
    configs = ("chat-uvicorn", "raw-picows", "tutorial-fastapi")
    assert modes == sorted((c, m) for c in configs for m in ("rate 20/s", "saturate"))
    for row in rows:
        if row["kind"] == "phase" and row["mode"] == "rate 20/s":
            # 20 a second for 0.5 s (the last send time may round either side of the end).
            assert 10 <= row["sent"] <= 11 and row["lost"] == 0, row


@pytest.mark.redis
def test_bench_joins_only_measures_the_joins_and_sends_nothing(tmp_path):
    rows = run_bench(
        tmp_path, "--sizes", "20", "--joins-only", "--rounds", "1", "--servers", "chat-uvicorn",
        "--redis",
    )  # fmt: skip
    assert not [row for row in rows if row["kind"] == "phase"]
    joins = {row["config"]: row for row in rows if row["kind"] == "join"}
    assert set(joins) == {"tutorial-fastapi", "raw-picows", "chat-uvicorn", "chat-uvicorn-redis"}
    for row in joins.values():
        assert row["join_seconds"] > 0 and row["join_server_cpu_seconds"] >= 0, row
    # The warm-up's one-off memory is kept apart: the chat's first database
    # connection and late imports alone take hundreds of KiB.
    assert joins["chat-uvicorn"]["first_use_rss_kib"] > 100
    assert joins["chat-uvicorn"]["join_redis_cpu_seconds"] is None
    assert joins["chat-uvicorn-redis"]["join_redis_cpu_seconds"] >= 0


def test_granian_is_measured_with_its_worker_process(tmp_path):
    """granian serves from a worker process it spawns: its CPU and memory count too."""
    rows = run_bench(
        tmp_path, "--sizes", "3", "--senders", "1", "--seconds", "0.3", "--no-rate",
        "--rounds", "1", "--servers", "chat-granian",
    )  # fmt: skip
    (phase,) = [row for row in rows if row["kind"] == "phase" and row["config"] == "chat-granian"]
    assert phase["delivered"] == phase["expected"] > 0 and phase["lost"] == 0, phase
    # The supervisor alone spends next to nothing: the worker relays.
    assert phase["server_cpu_us_per_delivery"] > 5, phase


@pytest.mark.redis
def test_layer_cost_measures_both_layers():
    result = subprocess.run(
        [sys.executable, "-m", "bench.layer_cost", "--members", "2", "--messages", "50",
         "--rounds", "1"],
        cwd=PROJECT_DIR,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    rows = [line for line in result.stdout.splitlines() if line.startswith("| 2 |")]
    assert [row.split("|")[2].strip() for row in rows] == ["in-process", "redis"]
    assert rows[0].rstrip().endswith("| 1.00x |")


@pytest.mark.redis
def test_bench_storm_joins_in_process_and_on_redis_on_a_shared_and_an_own_core():
    result = subprocess.run(
        [sys.executable, "-m", "bench.storm", "--members", "20", "--rounds", "1"],
        cwd=PROJECT_DIR,
        check=True,
        capture_output=True,
        text=True,
        timeout=180,
    )
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert [row.split(" | ")[0] for row in rows[1:]] == [
        "| in process",
        "| Redis, shared core",
        "| Redis, own core",
    ]
    assert rows[1].split(" | ")[2] == "1.00x (1.00x to 1.00x)"


def test_bench_deflate_finds_the_production_command_declining_what_browsers_offer():
    from bench.deflate import compress_seconds, rss_per_connection

    _, accepted = rss_per_connection(accept_deflate=False, members=4)
    assert accepted is False
    kib, accepted = rss_per_connection(accept_deflate=True, members=4)
    assert accepted is True and kib > 0
    assert compress_seconds(count=10) > 0
