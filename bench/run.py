"""`python -m bench.run`: the side-by-side benchmark (see docs/performance.md).

For each server column and room size: start the server pinned to its own
core, join N members, measure idle memory per connection, then for each
number of senders run a saturating phase and, once reference (a)'s peak is
known, a fixed-rate phase at half of that peak. Rate limiting is switched off
through `manage.py chat_settings` for the run and restored afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psutil
import uvloop

from chat.tests.servers import migrate, server_env

from . import report
from .designs import DESIGNS
from .loadgen import Room
from .servers import (
    CONFIGS,
    REDIS_CONFIGS,
    REFERENCE,
    MeasuredServer,
    cpu_seconds,
    manage,
    redis_server,
)

FULL_SIZES = [50, 500, 5000]
FULL_SENDERS = [1, 10]
QUICK_SIZES = [20]
QUICK_SENDERS = [1, 2]
# A member that sends more than this many messages ahead of the observer is
# throttled: deep enough to keep every design busy, shallow enough that the
# latency measured is the relay's, not a queue's.
DEFAULT_WINDOW = 4
JOIN_TIMEOUT_SECONDS = 60.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny smoke matrix, 1 s phases")
    parser.add_argument("--sizes", type=int, nargs="+", help="room sizes N")
    parser.add_argument("--senders", type=int, nargs="+", help="sender counts S")
    parser.add_argument("--seconds", type=float, help="length of each saturating phase")
    parser.add_argument(
        "--rate-seconds",
        type=float,
        help="length of each fixed-rate phase (default 10 s: its p99 is decided by a few slow "
        "fan-outs, so it needs more messages than a saturating phase's throughput does)",
    )
    parser.add_argument("--window", type=int, default=DEFAULT_WINDOW)
    parser.add_argument(
        "--servers",
        nargs="+",
        choices=sorted(CONFIGS),
        help="columns to run (default: all but the Redis ones); reference (a) is always run",
    )
    parser.add_argument("--redis", action="store_true", help="add the Redis columns")
    parser.add_argument("--server-cpus", default="0", help="taskset list for servers and Redis")
    parser.add_argument("--client-cpus", default="1", help="CPUs of the load generator")
    parser.add_argument("--no-rate", action="store_true", help="skip the fixed-rate phases")
    parser.add_argument(
        "--joins-only",
        action="store_true",
        help="measure the joins (a reconnect storm) and memory, send nothing",
    )
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample each server's stacks (bench.sampler) into OUT/profiles",
    )
    args = parser.parse_args(argv)
    args.sizes = args.sizes or (QUICK_SIZES if args.quick else FULL_SIZES)
    args.senders = args.senders or (QUICK_SENDERS if args.quick else FULL_SENDERS)
    args.seconds = args.seconds or (1.0 if args.quick else 3.0)
    args.rate_seconds = args.rate_seconds or (1.0 if args.quick else 10.0)
    keys = args.servers or [key for key in CONFIGS if key not in REDIS_CONFIGS]
    if args.redis:
        keys += [key for key in REDIS_CONFIGS if key not in keys]
    args.servers = [REFERENCE, *(key for key in keys if key != REFERENCE)]
    return args


def conditions(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "kind": "conditions",
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
        "loadavg": os.getloadavg(),
        "cpus": os.cpu_count(),
        "server_cpus": args.server_cpus,
        "client_cpus": args.client_cpus,
        "python": sys.version.split()[0],
        "command": " ".join(sys.argv),
        "window": args.window,
        "seconds": args.seconds,
        "rate_seconds": args.rate_seconds,
    }


async def warm_up(server: MeasuredServer) -> int:
    """Join two members to a room of their own and let them leave; the RSS that stayed.

    A server's first connection pays one-off costs: the modules it imports
    late, its first database connection and the thread that runs it, the
    allocator's arena for that thread. Measured from a fresh start, they
    would count as the room's per-connection memory, which at 50 members
    they would dominate. They are reported on their own (`first_use_rss_kib`)
    and left out of `rss_kib_per_connection`, for every design alike.
    """
    before = server.rss_bytes()
    room = Room(DESIGNS[server.config.design], server.ws_url, "warmup", 2)
    try:
        await room.join_all(deadline=time.monotonic() + JOIN_TIMEOUT_SECONDS)
    finally:
        await room.close()
    await server.idle()
    return server.rss_bytes() - before


async def measure_size(
    server: MeasuredServer,
    members: int,
    args: argparse.Namespace,
    peaks: dict[tuple[int, int], float],
    redis: psutil.Process | None = None,
) -> list[dict[str, Any]]:
    """Join `members` to one room, then run every phase; one row per result.

    With `redis` (the server runs on it), Redis's own CPU is reported too:
    it shares the server's core, so its work slows the server down.
    """
    config = server.config
    redis_cpu = None if redis is None else functools.partial(cpu_seconds, redis)
    base = {"config": config.key, "server": config.server, "members": members}
    first_use = await warm_up(server)
    rss_before = server.rss_bytes()
    room = Room(DESIGNS[config.design], server.ws_url, "bench", members)
    rows: list[dict[str, Any]] = []
    try:
        cpu_before = server.cpu_seconds()
        redis_before = redis_cpu() if redis_cpu else 0.0
        try:
            join_seconds = await room.join_all(deadline=time.monotonic() + JOIN_TIMEOUT_SECONDS)
        except (TimeoutError, OSError) as error:
            return [{**base, "kind": "failure", "error": f"join: {type(error).__name__} {error}"}]
        join_cpu = server.cpu_seconds() - cpu_before
        join_redis_cpu = round(redis_cpu() - redis_before, 2) if redis_cpu else None
        await server.idle()
        rss_per_connection = (server.rss_bytes() - rss_before) / members
        rows.append(
            {
                **base,
                "kind": "join",
                "join_seconds": round(join_seconds, 2),
                "join_server_cpu_seconds": round(join_cpu, 2),
                "join_redis_cpu_seconds": join_redis_cpu,
                "rss_kib_per_connection": round(rss_per_connection / 1024, 1),
                "first_use_rss_kib": round(first_use / 1024),
            }
        )
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        phase = 0
        for senders in [] if args.joins_only else args.senders:
            # Saturate first: reference (a)'s own peak sets the fixed rate of the cell.
            rates: list[float | None] = [None]
            while rates:
                rate = rates.pop(0)
                phase += 1
                stats = await room.run_phase(
                    phase=phase,
                    senders=senders,
                    seconds=args.seconds if rate is None else args.rate_seconds,
                    window=args.window,
                    rate=rate,
                    server_cpu=server.cpu_seconds,
                    redis_cpu=redis_cpu,
                )
                await server.idle()
                if config.key == REFERENCE and rate is None:
                    peaks[(members, senders)] = stats.deliveries_per_second
                peak = peaks.get((members, senders))
                if rate is None and peak and not args.no_rate:
                    rates.append(round(peak / 2 / (members - 1), 2))
                rows.append({**base, "kind": "phase", **asdict(stats)})
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    finally:
        await room.close()
    return rows


async def run_matrix(args: argparse.Namespace, env: dict[str, str], log_dir: Path) -> list[dict]:
    rows: list[dict[str, Any]] = [conditions(args)]
    peaks: dict[tuple[int, int], float] = {}
    profile_dir = None
    if args.profile:
        profile_dir = args.out / "profiles"
        profile_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        redis_url = redis = None
        if any(CONFIGS[key].redis for key in args.servers):
            redis_url, redis = stack.enter_context(
                redis_server(cpus=args.server_cpus, log_dir=log_dir)
            )
        for members in args.sizes:
            for key in args.servers:
                config = CONFIGS[key]
                server_environment = dict(env)
                if config.redis:
                    server_environment["REDIS_URL"] = redis_url
                profile = profile_dir and profile_dir / f"{key}-{members}.txt"
                with MeasuredServer(
                    config,
                    cpus=args.server_cpus,
                    env=server_environment,
                    log_dir=log_dir,
                    profile=profile,
                ) as server:
                    rows += await measure_size(
                        server, members, args, peaks, redis if config.redis else None
                    )
    rows.append({**conditions(args), "kind": "conditions-after"})
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.sched_setaffinity(0, {int(cpu) for cpu in args.client_cpus.split(",")})
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chat-bench-") as scratch:
        scratch_dir = Path(scratch)
        env = server_env(scratch_dir / "bench.sqlite3")
        migrate(env)
        before = json.loads(manage(env, "chat_settings"))["rate_limit_per_second"]
        manage(env, "chat_settings", "--set", "rate_limit_per_second=0")
        try:
            rows = uvloop.run(run_matrix(args, env, scratch_dir))
        finally:
            manage(env, "chat_settings", "--set", f"rate_limit_per_second={before}")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    jsonl = args.out / f"bench-{stamp}.jsonl"
    with jsonl.open("w") as out:
        report.write_jsonl(rows, out)
    table = report.markdown(rows)
    (args.out / f"bench-{stamp}.md").write_text(table + "\n")
    print(table)
    print(f"\n{jsonl}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
