"""The benchmark's output: one JSON line per measured phase, and a markdown table."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, TextIO

from .servers import REFERENCE


def write_jsonl(rows: Iterable[dict[str, Any]], out: TextIO) -> None:
    for row in rows:
        out.write(json.dumps(row, sort_keys=True) + "\n")


def _ratio(value: float | None, reference: float | None) -> str:
    if not value or not reference:
        return "-"
    return f"{value / reference:.2f}x"


def _or_dash(value: Any) -> str:
    return "-" if value is None else str(value)


def markdown(rows: list[dict[str, Any]]) -> str:
    """A table per mode, each figure beside its ratio to reference (a) in the same cell."""
    phases = [row for row in rows if row["kind"] == "phase"]
    joins = {(row["config"], row["members"]): row for row in rows if row["kind"] == "join"}
    reference = {
        (row["members"], row["senders"], row["mode"]): row
        for row in phases
        if row["config"] == REFERENCE
    }
    lines = [
        "| server | N | S | mode | deliveries/s | vs (a) | p50 ms | p99 ms | max ms "
        "| p99 vs (a) | lost | dup | reord | server µs/delivery | Redis µs/delivery "
        "| client CPU | join s | RSS KiB/conn |",
        "|---|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in phases:
        ref = reference.get((row["members"], row["senders"], row["mode"]))
        join = joins.get((row["config"], row["members"]), {})
        latency = row["latency_ms"]
        lines.append(
            f"| {row['config']} | {row['members']} | {row['senders']} | {row['mode']} "
            f"| {row['deliveries_per_second']:,.0f} "
            f"| {_ratio(row['deliveries_per_second'], ref and ref['deliveries_per_second'])} "
            f"| {latency['p50']} | {latency['p99']} | {latency['max']} "
            f"| {_ratio(latency['p99'], ref and ref['latency_ms']['p99'])} "
            f"| {row['lost']} | {row['duplicated']} | {row['reordered']} "
            f"| {row['server_cpu_us_per_delivery']} "
            f"| {_or_dash(row.get('redis_cpu_us_per_delivery'))} | {row['client_cpu_share']:.0%} "
            f"| {join.get('join_seconds', '-')} | {join.get('rss_kib_per_connection', '-')} |"
        )
    lines += ["", *_joins_table(joins)]
    failures = [row for row in rows if row["kind"] == "failure"]
    for row in failures:
        lines.append(f"\n{row['config']} N={row['members']}: {row['error']}")
    return "\n".join(lines)


def _joins_table(joins: dict[tuple[str, int], dict[str, Any]]) -> list[str]:
    """How long each room took to fill: a reconnect storm of N members."""
    lines = [
        "| server | N | join s | vs (a) | server CPU s | Redis CPU s | RSS KiB/conn "
        "| first use KiB |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for (config, members), row in joins.items():
        ref = joins.get((REFERENCE, members), {})
        lines.append(
            f"| {config} | {members} | {row['join_seconds']} "
            f"| {_ratio(row['join_seconds'], ref.get('join_seconds'))} "
            f"| {row.get('join_server_cpu_seconds', '-')} "
            f"| {_or_dash(row.get('join_redis_cpu_seconds'))} | {row['rss_kib_per_connection']} "
            f"| {row.get('first_use_rss_kib', '-')} |"
        )
    return lines
