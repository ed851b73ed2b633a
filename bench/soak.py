"""`python -m bench.soak`: a long run of many members on two processes and one Redis.

1,000 members (`--members`) in 20 rooms (`--rooms`) on two uvicorn
processes started as the README's production command, sharing one
test-started Redis, for 10 minutes (`--minutes`). Each member says
something about every 10 s (`--interval`); about 2 members a second
(`--churn`) drop without a goodbye and come back with their resume token,
or leave and come back as a new join, 1 to 5 s later. Every member checks
what it receives (bench.crowd): offsets without a gap or a repeat, the
content of each offset, and at the end every joined member must have its
room's latest offset.

Every 10 s (`--sample-seconds`) a row: members joined, messages and
deliveries per second, the latency of live deliveries (p50, p99), each
process's resident memory and open files, Redis's `used_memory`, clients
and open files, and the load average. At the end: the totals, an observer's
look at each room's member list (no ghosts, nobody missing), and whether
memory was flat after warm-up: the mean of the last minute within 10 % of
the mean of the second minute. Rows go to OUT/soak-<time>.jsonl, the
report to OUT/soak-<time>.md and standard output.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import tempfile
import time
from array import array
from pathlib import Path
from typing import Any

import uvloop

from . import results
from .crowd import Crowd
from .deployment import Deployment
from .limits import open_files_limit
from .loadgen import percentiles
from .results import save

# Open files besides one socket per member: the processes' own, Redis's, the log files.
SPARE_FILES = 512
# "Flat after warm-up": the last minute's mean within this share of the second minute's.
FLAT_SHARE = 0.10
JOIN_SECONDS_PER_MEMBER = 0.1
JOIN_SECONDS_MIN = 60.0
# After the run: every member back in, then every message delivered.
SETTLE_SECONDS = 60.0
DRAIN_SECONDS = 30.0
SERIES = ("rss_mib_0", "rss_mib_1", "redis_used_mib")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument(
        "--interval", type=float, default=10.0, help="seconds between a member's messages"
    )
    parser.add_argument(
        "--churn", type=float, default=2.0, help="members a second that drop or leave"
    )
    parser.add_argument("--sample-seconds", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args(argv)
    if args.members < 2 * args.rooms:
        parser.error("every room needs at least two members (--members >= 2 x --rooms)")
    return args


def flatness(samples: list[dict[str, Any]], series: str) -> dict[str, Any]:
    """The mean of `series` in the second minute and in the last one, and their ratio."""
    end = samples[-1]["t"] if samples else 0.0
    second = [s[series] for s in samples if 60 <= s["t"] < 120 and s[series] is not None]
    last = [s[series] for s in samples if end - 60 < s["t"] <= end and s[series] is not None]
    if end < 180 or not second or not last:
        return {"series": series, "verdict": "n/a (the run is shorter than 3 minutes)"}
    before, after = sum(second) / len(second), sum(last) / len(last)
    ratio = after / before if before else float("inf")
    return {
        "series": series,
        "second_minute": round(before, 2),
        "last_minute": round(after, 2),
        "ratio": round(ratio, 3),
        "verdict": "flat" if abs(ratio - 1) <= FLAT_SHARE else "NOT FLAT",
    }


class Sampler:
    """A row every `seconds`: the crowd's progress and the deployment's vitals."""

    def __init__(self, crowd: Crowd, deployment: Deployment, started: float) -> None:
        self.crowd = crowd
        self.deployment = deployment
        self.started = started
        self.previous = crowd.totals()
        self.previous_at = started
        self.previous_cpu = time.process_time()
        self.previous_vitals = deployment.vitals()
        self.rows: list[dict[str, Any]] = []

    async def sample(self) -> dict[str, Any]:
        vitals = await asyncio.to_thread(self.deployment.vitals)
        now = time.monotonic()
        totals = self.crowd.totals()
        latencies, self.crowd.latencies = self.crowd.latencies, array("q")
        seconds = max(1e-9, now - self.previous_at)
        cpu = time.process_time()
        # Shares of a core: the generator's own, and each process's.
        shares = {"cpu_client": round((cpu - self.previous_cpu) / seconds, 2)}
        for index in range(len(self.deployment.servers)):
            now_s, before_s = (
                vitals.get(f"cpu_seconds_{index}"),
                self.previous_vitals.get(f"cpu_seconds_{index}"),
            )
            if now_s is not None and before_s is not None:
                shares[f"cpu_{index}"] = round((now_s - before_s) / seconds, 2)
        row = {
            "kind": "sample",
            "t": round(now - self.started, 1),
            "joined": len(self.crowd.joined()),
            "messages_per_second": round((totals.acked - self.previous.acked) / seconds, 1),
            "deliveries_per_second": round((totals.received - self.previous.received) / seconds),
            "latency_ms": percentiles(latencies),
            **vitals,
            **shares,
            "lost": totals.lost,
            "doubled": totals.doubled + self.crowd.ledger.relayed_twice,
            "recovered": totals.recovered,
            "not_recovered": totals.not_recovered,
            "loadavg": os.getloadavg()[0],
        }
        self.previous, self.previous_at = totals, now
        self.previous_cpu, self.previous_vitals = cpu, vitals
        self.rows.append(row)
        return row


async def soak(args: argparse.Namespace, scratch: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [conditions(args)]
    with Deployment(scratch) as deployment:
        crowd = Crowd(
            deployment.urls, members=args.members, rooms=args.rooms, interval=args.interval
        )
        try:
            join_within = max(JOIN_SECONDS_MIN, JOIN_SECONDS_PER_MEMBER * args.members)
            joined_in = await crowd.join_all(within=join_within)
            rows.append({"kind": "joined", "seconds": round(joined_in, 1), **deployment.vitals()})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
            gc.collect()
            gc.freeze()
            rows += await run(crowd, deployment, args)
            rows.append(await finish(crowd))
        finally:
            gc.unfreeze()
            await crowd.close()
    rows.append({**conditions(args), "kind": "conditions-after"})
    return rows


async def run(crowd: Crowd, deployment: Deployment, args: argparse.Namespace) -> list[dict]:
    """The traffic and churn for the run's minutes, sampled."""
    started = time.monotonic()
    sampler = Sampler(crowd, deployment, started)
    end = started + args.minutes * 60
    background = [
        asyncio.ensure_future(crowd.traffic()),
        asyncio.ensure_future(crowd.churn(args.churn, away=(1.0, 5.0))),
    ]
    try:
        next_sample = started + args.sample_seconds
        while (now := time.monotonic()) < end:
            await asyncio.sleep(min(next_sample, end) - now)
            if time.monotonic() >= next_sample:
                row = await sampler.sample()
                print(json.dumps(row), file=sys.stderr, flush=True)
                next_sample += args.sample_seconds
        # Churn stops; everybody comes back, and the traffic goes on meanwhile.
        background[1].cancel()
        await crowd.wait_joined(within=SETTLE_SECONDS)
        crowd.sending = False
        await background[0]
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
    rows = list(sampler.rows)
    rows.append(await sampler.sample() | {"kind": "sample-final"})
    return rows


async def finish(crowd: Crowd) -> dict[str, Any]:
    """Deliver what is in flight, then the totals and the member lists."""
    drained = await crowd.drain(within=DRAIN_SECONDS)
    tails = crowd.tails()
    totals = crowd.totals()
    ledger = crowd.ledger
    reached = sum(ledger.holds(room, key) for room, key in crowd.unconfirmed)
    return {
        "kind": "summary",
        "drained": drained,
        **totals.as_dict(),
        "lost": totals.lost + tails,
        "lost_in_gaps": totals.lost,
        "lost_at_the_end": tails,
        "doubled": totals.doubled + ledger.relayed_twice,
        "content_mismatched": ledger.mismatched,
        "unconfirmed_that_reached_the_room": reached,
        "room_messages": sum(ledger.tops.values()),
        **await crowd.presence_check(),
    }


def conditions(args: argparse.Namespace) -> dict[str, Any]:
    return results.conditions(
        members=args.members,
        rooms=args.rooms,
        minutes=args.minutes,
        interval=args.interval,
        churn=args.churn,
    )


def markdown(rows: list[dict[str, Any]]) -> str:
    """The report: the samples as a table, then the summary and the flatness verdicts."""
    samples = [row for row in rows if row["kind"] == "sample"]
    summary = next((row for row in rows if row["kind"] == "summary"), {})
    first = rows[0]
    after = next((row for row in rows if row["kind"] == "conditions-after"), first)
    lines = [
        f"# Soak: {first['members']} members, {first['rooms']} rooms, {first['minutes']:g} min",
        "",
        f"Started {first['time']}, load average {_load(first['loadavg'])} at the start and "
        f"{_load(after['loadavg'])} at the end; {first['cpus']} CPUs.",
        "",
        "| t s | joined | msg/s | deliveries/s | p50 ms | p99 ms | RSS 0 MiB | RSS 1 MiB "
        "| Redis MiB | fds 0 | fds 1 | Redis clients | Redis fds | lost | doubled "
        "| CPU 0, 1, client | load |",
        "|" + "---|" * 17,
    ]
    for s in samples:
        latency = s["latency_ms"]
        lines.append(
            f"| {s['t']:g} | {s['joined']} | {s['messages_per_second']} | "
            f"{s['deliveries_per_second']} | {latency['p50']} | {latency['p99']} | "
            f"{s['rss_mib_0']} | {s['rss_mib_1']} | {s['redis_used_mib']} | {s['fds_0']} | "
            f"{s['fds_1']} | {s['redis_clients']} | {s['redis_fds']} | {s['lost']} | "
            f"{s['doubled']} | {s.get('cpu_0')}, {s.get('cpu_1')}, {s['cpu_client']} | "
            f"{s['loadavg']:.2f} |"
        )
    lines += ["", "## Summary", ""]
    for key in (
        "lost", "lost_in_gaps", "lost_at_the_end", "doubled", "content_mismatched", "drained",
        "room_messages", "sent", "acked", "received", "replayed", "joins", "drops", "leaves",
        "recovered", "not_recovered", "missed_told", "unconfirmed",
        "unconfirmed_that_reached_the_room",
        "ghosts", "missing", "closes", "errors",
    ):  # fmt: skip
        lines.append(f"- {key}: {summary.get(key)}")
    lines += ["", "## Memory after warm-up (last minute against the second)", ""]
    for series in SERIES:
        verdict = flatness(samples, series)
        figures = ", ".join(f"{k} {v}" for k, v in verdict.items() if k != "series")
        lines.append(f"- {series}: {figures}")
    return "\n".join(lines)


def _load(loadavg: Any) -> str:
    return " / ".join(f"{value:.2f}" for value in loadavg)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    open_files_limit(args.members + SPARE_FILES)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chat-soak-") as scratch:
        rows = uvloop.run(soak(args, Path(scratch)))
    samples = [row for row in rows if row["kind"] == "sample"]
    rows.append({"kind": "flatness", "series": [flatness(samples, s) for s in SERIES]})
    save(args.out, "soak", rows, markdown(rows))
    summary = next(row for row in rows if row["kind"] == "summary")
    failed = summary["lost"] or summary["doubled"] or summary["content_mismatched"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
