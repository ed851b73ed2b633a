"""The benchmark's output: JSON lines of every round and median, and a markdown table.

`python -m bench.report FILE.jsonl` prints the table of a run again, worked
out afresh from its rounds (so a run made before a change to this module
gets that change's table).

A cell (server, N, S, mode) runs once per round, the columns taking turns,
so each round's figure has a reference (a) figure and a reference (c) figure
(the ceiling) measured seconds away (in the same group of columns, when they
run in groups: each has its own (a) and (c)). Ratios are taken round by round,
against those neighbours, and the table gives their median and range: a ratio
of two medians would pair figures measured minutes apart, which on a machine
whose speed drifts is the error the rounds are there to avoid. A run made
before (c) existed has no (c) rows; its tables say "-" there.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

from .servers import CEILING, REFERENCE

Row = dict[str, Any]
# The rows this module derives from a run's own; worked out again on reading.
DERIVED_KINDS = frozenset(
    {
        "phase-median",
        "join-median",
        "redis-ratio",
        "redis-join-ratio",
        "metrics-ratio",
        "recovery-ratio",
    }
)


def write_jsonl(rows: Iterable[Row], out: TextIO) -> None:
    for row in rows:
        out.write(json.dumps(row, sort_keys=True) + "\n")


def read_jsonl(path: Path) -> list[Row]:
    """A run's rows as `bench.run` wrote them, less the summaries it derived from them."""
    with path.open() as lines:
        rows = [json.loads(line) for line in lines if line.strip()]
    return [row for row in rows if row["kind"] not in DERIVED_KINDS]


def _median(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return round(statistics.median(present), 3) if present else None


def _ratios(
    rows: list[Row], references: dict[Any, Row], key: Callable[[Row], Any], value: Callable
) -> list[float]:
    """Each round's figure over a reference's (`references`) of the same cell and round."""
    ratios = []
    for row in rows:
        reference = references.get(key(row))
        mine, theirs = value(row), reference and value(reference)
        if mine and theirs and mine == mine and theirs == theirs:  # skip NaN
            ratios.append(mine / theirs)
    return ratios


def _ratio_summary(ratios: list[float]) -> dict[str, float | None]:
    if not ratios:
        return {"median": None, "min": None, "max": None}
    return {
        "median": round(statistics.median(ratios), 3),
        "min": round(min(ratios), 3),
        "max": round(max(ratios), 3),
    }


def _by(rows: Iterable[Row], key: Callable[[Row], Any]) -> dict[Any, list[Row]]:
    groups: dict[Any, list[Row]] = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    return groups


def phase_medians(rows: list[Row]) -> list[Row]:
    """One row per cell: medians over its rounds, ratios to (a) and (c) round by round."""
    phases = [row for row in rows if row["kind"] == "phase"]

    def cell(row: Row) -> tuple:
        return (row["members"], row["senders"], row["mode"])

    def cell_round(row: Row) -> tuple:
        return (*cell(row), row.get("group", 0), row.get("round", 0))

    references = {cell_round(row): row for row in phases if row["config"] == REFERENCE}
    ceilings = {cell_round(row): row for row in phases if row["config"] == CEILING}

    def deliveries(row: Row) -> float:
        return row["deliveries_per_second"]

    def p99(row: Row) -> float:
        return row["latency_ms"]["p99"]

    def per_cpu_second(row: Row) -> float | None:
        """Deliveries per CPU second: its ratio is (c)'s CPU per delivery over this column's."""
        microseconds = row["server_cpu_us_per_delivery"]
        return 1e6 / microseconds if microseconds else None

    medians = []
    for (config, members, senders, mode), group in _by(
        phases, lambda row: (row["config"], *cell(row))
    ).items():
        latency = [row["latency_ms"] for row in group]
        medians.append(
            {
                "kind": "phase-median",
                "config": config,
                "members": members,
                "senders": senders,
                "mode": mode,
                "rounds": len(group),
                "deliveries_per_second": _median([row["deliveries_per_second"] for row in group]),
                "vs_reference": _ratio_summary(_ratios(group, references, cell_round, deliveries)),
                "vs_ceiling": _ratio_summary(_ratios(group, ceilings, cell_round, deliveries)),
                "latency_ms": {
                    "p50": _median([item["p50"] for item in latency]),
                    "p95": _median([item.get("p95") for item in latency]),
                    "p99": _median([item["p99"] for item in latency]),
                    "max": max((item["max"] for item in latency), default=None),
                },
                "p99_vs_reference": _ratio_summary(_ratios(group, references, cell_round, p99)),
                "p99_vs_ceiling": _ratio_summary(_ratios(group, ceilings, cell_round, p99)),
                "lost": sum(row["lost"] for row in group),
                "duplicated": sum(row["duplicated"] for row in group),
                "reordered": sum(row["reordered"] for row in group),
                "server_cpu_us_per_delivery": _median(
                    [row["server_cpu_us_per_delivery"] for row in group]
                ),
                # The steadier figure on a shared machine: a column's own CPU.
                "cpu_vs_ceiling": _ratio_summary(
                    _ratios(group, ceilings, cell_round, per_cpu_second)
                ),
                "redis_cpu_us_per_delivery": _median(
                    [row.get("redis_cpu_us_per_delivery") for row in group]
                ),
                "client_cpu_share": max(row["client_cpu_share"] for row in group),
            }
        )
    return medians


def join_medians(rows: list[Row]) -> list[Row]:
    """One row per (server, N): medians over the join rounds, ratios to (a) and (c) per round."""
    joins = [row for row in rows if row["kind"] == "join"]

    def size_round(row: Row) -> tuple:
        return (row["members"], row.get("group", 0), row.get("round", 0))

    references = {size_round(row): row for row in joins if row["config"] == REFERENCE}
    ceilings = {size_round(row): row for row in joins if row["config"] == CEILING}

    def seconds(row: Row) -> float:
        return row["join_seconds"]

    medians = []
    for (config, members), group in _by(joins, lambda row: (row["config"], row["members"])).items():
        medians.append(
            {
                "kind": "join-median",
                "config": config,
                "members": members,
                "rounds": len(group),
                "join_seconds": _median([row["join_seconds"] for row in group]),
                "vs_reference": _ratio_summary(_ratios(group, references, size_round, seconds)),
                "vs_ceiling": _ratio_summary(_ratios(group, ceilings, size_round, seconds)),
                "join_server_cpu_seconds": _median(
                    [row["join_server_cpu_seconds"] for row in group]
                ),
                "join_redis_cpu_seconds": _median(
                    [row.get("join_redis_cpu_seconds") for row in group]
                ),
                "join_client_cpu_share": max(
                    (row.get("join_client_cpu_share", 0.0) for row in group), default=None
                ),
                "rss_kib_per_connection": _median([row["rss_kib_per_connection"] for row in group]),
                "first_use_rss_kib": _median([row.get("first_use_rss_kib") for row in group]),
            }
        )
    return medians


def _or_dash(value: Any) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _ratio(summary: dict[str, float | None]) -> str:
    return "-" if summary["median"] is None else f"{summary['median']:.2f}x"


def _spread(summary: dict[str, float | None]) -> str:
    if summary["median"] is None:
        return "-"
    return f"{summary['min']:.2f}-{summary['max']:.2f}"


def markdown(rows: list[Row]) -> str:
    """The phases' table and the joins' table, each cell's medians beside its ratios to (a), (c)."""
    lines = [
        "| server | N | S | mode | deliveries/s | vs (a) | range | vs (c) | range | p50 ms "
        "| p95 ms | p99 ms | max ms | p99 vs (a) | range | p99 vs (c) | range | lost | dup "
        "| reord | server µs/delivery | (c)'s µs over it | range | Redis µs/delivery "
        "| client CPU | rounds |",
        "|---|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:"
        "|--:|--:|--:|--:|--:|--:|",
    ]
    for row in phase_medians(rows):
        latency = row["latency_ms"]
        lines.append(
            f"| {row['config']} | {row['members']} | {row['senders']} | {row['mode']} "
            f"| {row['deliveries_per_second']:,.0f} "
            f"| {_ratio(row['vs_reference'])} | {_spread(row['vs_reference'])} "
            f"| {_ratio(row['vs_ceiling'])} | {_spread(row['vs_ceiling'])} "
            f"| {_or_dash(latency['p50'])} | {_or_dash(latency['p95'])} "
            f"| {_or_dash(latency['p99'])} "
            f"| {_or_dash(latency['max'])} "
            f"| {_ratio(row['p99_vs_reference'])} | {_spread(row['p99_vs_reference'])} "
            f"| {_ratio(row['p99_vs_ceiling'])} | {_spread(row['p99_vs_ceiling'])} "
            f"| {row['lost']} | {row['duplicated']} | {row['reordered']} "
            f"| {_or_dash(row['server_cpu_us_per_delivery'])} "
            f"| {_ratio(row['cpu_vs_ceiling'])} | {_spread(row['cpu_vs_ceiling'])} "
            f"| {_or_dash(row['redis_cpu_us_per_delivery'])} | {row['client_cpu_share']:.0%} "
            f"| {row['rounds']} |"
        )
    lines += ["", *_joins_table(rows)]
    lines += _pair_table(REDIS_PAIR, redis_ratios(rows))
    join_ratios = redis_join_ratios(rows)
    if join_ratios:
        lines += [
            "",
            f"| {REDIS_PAIR[0]} vs {REDIS_PAIR[1]}, join storm | N | join s | range |",
            "|---|--:|--:|--:|",
        ]
        for row in join_ratios:
            ratio = row["join_seconds"]
            lines.append(f"| | {row['members']} | {_ratio(ratio)} | {_spread(ratio)} |")
    lines += _pair_table(METRICS_PAIR, metrics_ratios(rows))
    for pair in RECOVERY_PAIRS:
        lines += _pair_table(pair, pair_ratios(rows, pair, "recovery-ratio"))
    for row in rows:
        if row["kind"] == "failure":
            lines.append(f"\n{row['config']} N={row['members']}: {row['error']}")
    return "\n".join(lines)


def _joins_table(rows: list[Row]) -> list[str]:
    """How long each room took to fill: a reconnect storm of N members."""
    lines = [
        "| server | N | join s | vs (a) | range | vs (c) | range | server CPU s | Redis CPU s "
        "| client CPU | RSS KiB/conn | first use KiB | rounds |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in join_medians(rows):
        lines.append(
            f"| {row['config']} | {row['members']} | {_or_dash(row['join_seconds'])} "
            f"| {_ratio(row['vs_reference'])} | {_spread(row['vs_reference'])} "
            f"| {_ratio(row['vs_ceiling'])} | {_spread(row['vs_ceiling'])} "
            f"| {_or_dash(row['join_server_cpu_seconds'])} "
            f"| {_or_dash(row['join_redis_cpu_seconds'])} "
            f"| {row['join_client_cpu_share']:.0%} "
            f"| {_or_dash(row['rss_kib_per_connection'])} "
            f"| {_or_dash(row['first_use_rss_kib'])} | {row['rounds']} |"
        )
    return lines


# SPEC's scale-out promise, measured in one process: the Redis layer against
# the in-process one, each round against its neighbour in the same round.
REDIS_PAIR = ("chat-uvicorn-redis", "chat-uvicorn")
# SPEC "Metrics": counting costs at most 3 % of the relay's throughput; the
# same build with CHAT_METRICS_TOKEN set (counting) against unset (nothing).
METRICS_PAIR = ("chat-uvicorn-metrics", "chat-uvicorn")
# SPEC "Nothing lost across a short disconnect": recovery on at its defaults
# against the same build with recovery_messages=0, in process and on Redis.
RECOVERY_PAIRS = [
    ("chat-uvicorn", "chat-uvicorn-norecovery"),
    ("chat-uvicorn-redis", "chat-uvicorn-redis-norecovery"),
]


def pair_ratios(rows: list[Row], pair: tuple[str, str], kind: str) -> list[Row]:
    """Per cell: the first column's deliveries/s and p99 over the second's, round by round."""
    key, base_key = pair
    phases = [row for row in rows if row["kind"] == "phase"]

    def cell_round(row: Row) -> tuple:
        key = (row["members"], row["senders"], row["mode"])
        return (*key, row.get("group", 0), row.get("round", 0))

    base = {cell_round(row): row for row in phases if row["config"] == base_key}
    if not base:
        return []
    cells = _by(
        (row for row in phases if row["config"] == key),
        lambda row: (row["members"], row["senders"], row["mode"]),
    )
    return [
        {
            "kind": kind,
            "members": members,
            "senders": senders,
            "mode": mode,
            "deliveries": _ratio_summary(
                _ratios(group, base, cell_round, lambda r: r["deliveries_per_second"])
            ),
            "p99": _ratio_summary(
                _ratios(group, base, cell_round, lambda r: r["latency_ms"]["p99"])
            ),
        }
        for (members, senders, mode), group in cells.items()
    ]


def redis_ratios(rows: list[Row]) -> list[Row]:
    """Per cell: the Redis column's deliveries/s over the in-process column's, round by round."""
    return pair_ratios(rows, REDIS_PAIR, "redis-ratio")


def redis_join_ratios(rows: list[Row]) -> list[Row]:
    """Per N: the Redis column's join storm time over the in-process one's, round by round."""
    key, base_key = REDIS_PAIR
    joins = [row for row in rows if row["kind"] == "join"]

    def size_round(row: Row) -> tuple:
        return (row["members"], row.get("group", 0), row.get("round", 0))

    base = {size_round(row): row for row in joins if row["config"] == base_key}
    sizes = _by((row for row in joins if row["config"] == key), lambda row: row["members"])
    return [
        {
            "kind": "redis-join-ratio",
            "members": members,
            "join_seconds": _ratio_summary(
                _ratios(group, base, size_round, lambda row: row["join_seconds"])
            ),
        }
        for members, group in sizes.items()
        if any(size_round(row) in base for row in group)
    ]


def metrics_ratios(rows: list[Row]) -> list[Row]:
    """Per cell: deliveries/s with metrics counted over without, round by round."""
    return pair_ratios(rows, METRICS_PAIR, "metrics-ratio")


def recovery_ratios(rows: list[Row]) -> list[Row]:
    """Per cell: deliveries/s with recovery on over off, in process and on Redis."""
    return [
        {**ratio, "pair": " vs ".join(pair)}
        for pair in RECOVERY_PAIRS
        for ratio in pair_ratios(rows, pair, "recovery-ratio")
    ]


def _pair_table(pair: tuple[str, str], ratios: list[Row]) -> list[str]:
    if not ratios:
        return []
    lines = [
        "",
        f"| {pair[0]} vs {pair[1]} | N | S | mode | deliveries/s | range | p99 | range |",
        "|---|--:|--:|---|--:|--:|--:|--:|",
    ]
    for row in ratios:
        lines.append(
            f"| | {row['members']} | {row['senders']} | {row['mode']} "
            f"| {_ratio(row['deliveries'])} | {_spread(row['deliveries'])} "
            f"| {_ratio(row['p99'])} | {_spread(row['p99'])} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print a benchmark run's markdown table again.")
    parser.add_argument("jsonl", type=Path, help="a bench-<time>.jsonl written by bench.run")
    args = parser.parse_args(argv)
    print(markdown(read_jsonl(args.jsonl)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
