"""`python -m bench.storm`: a join storm in process and on Redis, with Redis on a core of its own.

`make bench` pins redis-server to the server's core, so that a column's CPU
is all on one core and comparable with the in-process one's. On Redis a
join is a few commands, each of which wakes redis-server, and on a shared
core it then preempts the server: about 1.7 involuntary context switches a
join, which a deployment that gives Redis a core of its own (docs/deploy.md)
does not pay. This runs the same storm (N members into one room on a fresh
uvicorn process, the README's command) in process, on a Redis sharing the
server's core, and on a Redis pinned to another core, taking turns round by
round, and reports each storm's time, the server's user and system CPU and
its context switches: what of the Redis column's extra time is the shared
core's. The generator shares its core with the own-core Redis, so that
column's time is an upper bound.

    .venv/bin/python -m bench.storm --members 10000 --rounds 3
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil
import uvloop

from chat.testing.servers import migrate, server_env

from .designs import DESIGNS
from .limits import open_files_limit
from .loadgen import Room
from .run import SPARE_FILES, rotated
from .servers import CONFIGS, MeasuredServer, manage, redis_server

JOIN_TIMEOUT_SECONDS = 120.0
MODES = ("in process", "Redis, shared core", "Redis, own core")


async def storm(server: MeasuredServer, members: int) -> dict[str, float]:
    """Join `members` to one room; the time and what the server spent on it."""
    process = psutil.Process(server.pid)
    cpu, switches = process.cpu_times(), process.num_ctx_switches()
    room = Room(DESIGNS["chat"], server.ws_url, "storm", members)
    started = time.monotonic()
    try:
        await room.join_all(deadline=started + JOIN_TIMEOUT_SECONDS)
        seconds = time.monotonic() - started
        after, switched = process.cpu_times(), process.num_ctx_switches()
    finally:
        await room.close()
    return {
        "seconds": seconds,
        "user": after.user - cpu.user,
        "system": after.system - cpu.system,
        "involuntary": switched.involuntary - switches.involuntary,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--server-cpus", default="0")
    parser.add_argument("--other-cpus", default="1", help="the generator's, and the own-core Redis")
    args = parser.parse_args(argv)
    if open_files_limit(args.members + SPARE_FILES) < args.members + SPARE_FILES:
        sys.exit(f"bench.storm needs {args.members + SPARE_FILES} open files; raise ulimit -n")
    os.sched_setaffinity(0, {int(cpu) for cpu in args.other_cpus.split(",")})
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    with (
        tempfile.TemporaryDirectory(prefix="chat-storm-") as scratch,
        contextlib.ExitStack() as stack,
    ):
        log_dir = Path(scratch)
        env = server_env(log_dir / "storm.sqlite3")
        migrate(env)
        manage(env, "chat_settings", "--set", "rate_limit_per_second=0")
        shared = stack.enter_context(redis_server(cpus=args.server_cpus, log_dir=log_dir))[0]
        own = stack.enter_context(redis_server(cpus=args.other_cpus, log_dir=log_dir))[0]
        urls = {MODES[0]: None, MODES[1]: shared, MODES[2]: own}
        for turn in range(args.rounds):
            for mode in rotated(list(MODES), turn):
                mode_env = dict(env) if urls[mode] is None else {**env, "REDIS_URL": urls[mode]}
                server = MeasuredServer(
                    CONFIGS["chat-uvicorn"], cpus=args.server_cpus, env=mode_env, log_dir=log_dir
                )
                with server:
                    figures = uvloop.run(storm(server, args.members))
                results[mode].append(figures)
                print(mode, {key: round(value, 2) for key, value in figures.items()}, flush=True)
    print(f"\n| {args.members:,} joins | storm s | vs in process | user s | system s "
          "| involuntary switches |")  # fmt: skip
    print("|---|--:|--:|--:|--:|--:|")
    base = [row["seconds"] for row in results[MODES[0]]]
    for mode, rows in results.items():
        ratios = [row["seconds"] / ref for row, ref in zip(rows, base, strict=True)]
        print(
            f"| {mode} | {statistics.median(row['seconds'] for row in rows):.2f} "
            f"| {statistics.median(ratios):.2f}x ({min(ratios):.2f}x to {max(ratios):.2f}x) "
            f"| {statistics.median(row['user'] for row in rows):.2f} "
            f"| {statistics.median(row['system'] for row in rows):.2f} "
            f"| {statistics.median(row['involuntary'] for row in rows):,.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
