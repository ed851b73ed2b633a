"""`python -m bench.run`: the side-by-side benchmark (see docs/performance.md).

For each room size, every server column runs at the same time, each pinned
to the same core and holding its own room, and the columns take turns: each
phase (a saturating one, then, once reference (a)'s peak is known, one at
half of that peak) runs on every column in turn, for several rounds, so that
a ratio compares figures measured seconds apart rather than minutes. This
machine's speed drifts by up to 2x over minutes; figures taken one server
after the other could not tell a faster server from a faster minute.

The joins of a size are measured the same way: per round, every column is
started afresh (a reconnect storm meets a new process) and joined in turn;
the last round's rooms stay for the phases. Rate limiting is switched off
through `manage.py chat_settings` for the run and restored afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil
import uvloop

from chat.testing.servers import migrate, server_env

from . import report, results
from .designs import DESIGNS
from .limits import open_files_limit
from .loadgen import Room
from .servers import (
    CONFIGS,
    OPT_IN,
    RECOVERY_OFF,
    REDIS_CONFIGS,
    REFERENCE,
    REFERENCES,
    MeasuredServer,
    cpu_seconds,
    manage,
    redis_server,
    wait_idle,
)

FULL_SIZES = [50, 500, 5000]
FULL_SENDERS = [1, 10]
QUICK_SIZES = [20]
QUICK_SENDERS = [1, 2]
# A member that sends more than this many messages ahead of the observer is
# throttled: deep enough to keep every design busy, shallow enough that the
# latency measured is the relay's, not a queue's.
DEFAULT_WINDOW = 4
# Each phase runs this many times per column, the columns taking turns; the
# report gives the median. Three is the fewest with a median that ignores
# one disturbed round.
DEFAULT_ROUNDS = 3
JOIN_TIMEOUT_SECONDS = 60.0
# Open files the generator needs besides its members' sockets.
SPARE_FILES = 256


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
    parser.add_argument(
        "--rounds",
        type=int,
        help=f"times each phase and each join storm runs per column (default {DEFAULT_ROUNDS}, "
        "1 with --quick); the report gives medians",
    )
    parser.add_argument("--window", type=int, default=DEFAULT_WINDOW)
    parser.add_argument(
        "--servers",
        nargs="+",
        choices=sorted(CONFIGS),
        help="columns to run (default: all but the Redis ones); references (a) and (c) are "
        "always run",
    )
    parser.add_argument("--redis", action="store_true", help="add the Redis columns")
    parser.add_argument(
        "--recovery",
        action="store_true",
        help="add, beside each chat-uvicorn column, the same with recovery off (its cost)",
    )
    parser.add_argument("--server-cpus", default="0", help="taskset list for servers and Redis")
    parser.add_argument("--client-cpus", default="1", help="CPUs of the load generator")
    parser.add_argument("--no-rate", action="store_true", help="skip the fixed-rate phases")
    parser.add_argument(
        "--light",
        type=float,
        metavar="MSGS",
        help="add a light fixed-rate phase of MSGS messages/s in all after each cell's others "
        "(2 into a room of 500: about 1,000 deliveries/s, where no column is busy and a p99 "
        "is the relay's own delay)",
    )
    parser.add_argument(
        "--joins-only",
        action="store_true",
        help="measure the joins (a reconnect storm) and memory, send nothing",
    )
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample each server's stacks in the last round (bench.sampler) into OUT/profiles; "
        "not granian's, whose application runs in a worker process",
    )
    args = parser.parse_args(argv)
    args.sizes = args.sizes or (QUICK_SIZES if args.quick else FULL_SIZES)
    args.senders = args.senders or (QUICK_SENDERS if args.quick else FULL_SENDERS)
    args.seconds = args.seconds or (1.0 if args.quick else 3.0)
    args.rate_seconds = args.rate_seconds or (1.0 if args.quick else 10.0)
    args.rounds = args.rounds or (1 if args.quick else DEFAULT_ROUNDS)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    keys = args.servers or [key for key in CONFIGS if key not in OPT_IN]
    if args.redis:
        keys += [key for key in REDIS_CONFIGS if key not in keys]
    if args.recovery:
        keys += [RECOVERY_OFF[key] for key in list(keys) if key in RECOVERY_OFF]
    args.servers = [*REFERENCES, *(key for key in keys if key not in REFERENCES)]
    return args


def conditions(args: argparse.Namespace) -> dict[str, Any]:
    return results.conditions(
        server_cpus=args.server_cpus,
        client_cpus=args.client_cpus,
        window=args.window,
        seconds=args.seconds,
        rate_seconds=args.rate_seconds,
        rounds=args.rounds,
    )


def column_groups(servers: list[str], members: int, files: int) -> list[list[str]]:
    """The columns of a room size, split into groups that fit in `files` open files.

    Every group has references (a) and (c) of its own, so that each ratio
    still compares figures measured seconds apart. One group when they all
    fit, and one group too when not even the references and one column fit
    but one room does: its columns then hold their rooms one at a time
    (`one_room_at_a_time`).
    """
    references = [key for key in servers if key in REFERENCES]
    others = [key for key in servers if key not in REFERENCES]
    if one_room_at_a_time(servers, members, files):
        return [servers]
    per_group = (files - SPARE_FILES) // members - len(references)
    if per_group < 1:
        sys.exit(
            f"bench.run needs {members + SPARE_FILES} open files for N={members} (one room at "
            f"a time); the limit is {files}. Raise it (ulimit -n) or run smaller --sizes."
        )
    if not others:
        return [references]
    return [
        [*references, *others[start : start + per_group]]
        for start in range(0, len(others), per_group)
    ]


def one_room_at_a_time(servers: list[str], members: int, files: int) -> bool:
    """Whether rooms of `members` fit in `files` open files only one at a time.

    Rooms of 10,000 members do not fit beside each other under a hard limit
    of 20,000 files, which a process without privilege cannot raise: then
    each round starts every column afresh and each column in turn joins its
    room, runs that round's saturating phases and closes it, so that the
    generator holds one room at a time. A round's figures are then a minute
    apart rather than seconds, and there is no fixed-rate phase (its rate
    comes from reference (a)'s median peak, known only after every round).
    """
    references = len([key for key in servers if key in REFERENCES])
    rooms = (files - SPARE_FILES) // members
    return rooms < min(len(servers), references + 1) and rooms >= 1


def rotated(items: list[Any], turn: int) -> list[Any]:
    """`items` starting at position `turn`: no column always goes first in a round."""
    if not items:
        return items
    start = turn % len(items)
    return items[start:] + items[:start]


@dataclass(slots=True)
class Column:
    """One server column of one room size: its process, its room, its Redis if any."""

    server: MeasuredServer
    redis: psutil.Process | None = None
    room: Room | None = None

    @property
    def key(self) -> str:
        return self.server.config.key

    def redis_cpu(self) -> Callable[[], float] | None:
        """Redis's CPU seconds, for a column on Redis: it shares the server's core."""
        return None if self.redis is None else functools.partial(cpu_seconds, self.redis)

    async def close_room(self) -> None:
        if self.room is not None:
            room, self.room = self.room, None
            await room.close()


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


async def join(column: Column, members: int, turn: int) -> dict[str, Any]:
    """Warm the server up, then connect and join `members` to one room: the join row."""
    server = column.server
    config = server.config
    base = {"config": config.key, "server": config.server, "members": members, "round": turn}
    first_use = await warm_up(server)
    rss_before = server.rss_bytes()
    redis_cpu = column.redis_cpu()
    room = Room(DESIGNS[config.design], server.ws_url, "bench", members)
    cpu_before = server.cpu_seconds()
    redis_before = redis_cpu() if redis_cpu else 0.0
    client_before = time.process_time()
    try:
        join_seconds = await room.join_all(deadline=time.monotonic() + JOIN_TIMEOUT_SECONDS)
    except (TimeoutError, OSError) as error:
        await room.close()
        return {**base, "kind": "failure", "error": f"join: {type(error).__name__} {error}"}
    column.room = room
    client_cpu = time.process_time() - client_before
    join_cpu = server.cpu_seconds() - cpu_before
    join_redis_cpu = round(redis_cpu() - redis_before, 2) if redis_cpu else None
    await server.idle()
    return {
        **base,
        "kind": "join",
        "join_seconds": round(join_seconds, 3),
        "join_server_cpu_seconds": round(join_cpu, 2),
        "join_redis_cpu_seconds": join_redis_cpu,
        # The generator's share of its core during the joins: near 100 %, the
        # join time would be the generator's, not the server's.
        "join_client_cpu_share": round(client_cpu / max(join_seconds, 1e-9), 3),
        "rss_kib_per_connection": round((server.rss_bytes() - rss_before) / members / 1024, 1),
        "first_use_rss_kib": round(first_use / 1024),
    }


class Columns:
    """The columns of one room size, all running, taking turns on the server core."""

    def __init__(self, columns: list[Column]) -> None:
        self.active = columns

    def cpu_seconds(self) -> float:
        """CPU of every process on the server core: servers and Redis."""
        total = sum(column.server.cpu_seconds() for column in self.active)
        redis = {column.redis.pid: column.redis for column in self.active if column.redis}
        return total + sum(cpu_seconds(process) for process in redis.values())

    async def settle(self, members: int) -> list[dict[str, Any]]:
        """Wait until no column is busy; retire (stop) any that stays busy. Failure rows."""
        if await wait_idle(self.cpu_seconds):
            return []
        failures = []
        for column in list(self.active):
            if not await column.server.idle():
                failures.append(await self.retire(column, members, "still busy after its phase"))
        return failures

    async def retire(self, column: Column, members: int, why: str) -> dict[str, Any]:
        """Stop a column for the rest of this size: it would slow the others down."""
        self.active.remove(column)
        column.server.process.kill()
        await column.close_room()
        config = column.server.config
        row = {"config": config.key, "server": config.server, "members": members}
        return {**row, "kind": "failure", "error": f"{why}: retired for the rest of N={members}"}


async def run_phases(
    columns: Columns,
    members: int,
    args: argparse.Namespace,
    *,
    turns: range | None = None,
    phase: int = 0,
) -> list[dict[str, Any]]:
    """Every sender count and mode, each phase on every column in turn, `rounds` times.

    `turns`: the rounds to run (default all); with one column and one round
    (`one_room_at_a_time`), no fixed-rate phase. `phase` numbers the first
    phase after it, so that each phase of a run has a number of its own.
    """
    rows: list[dict[str, Any]] = []
    turns = range(args.rounds) if turns is None else turns
    fixed_rate = len(turns) == args.rounds and not args.no_rate

    async def each_column(senders: int, seconds: float, rate: float | None) -> None:
        nonlocal phase
        for turn in turns:
            for column in rotated(list(columns.active), turn):
                rows.extend(await columns.settle(members))
                if column not in columns.active:
                    continue
                phase += 1
                stats = await column.room.run_phase(
                    phase=phase,
                    senders=senders,
                    seconds=seconds,
                    window=args.window,
                    rate=rate,
                    server_cpu=column.server.cpu_seconds,
                    redis_cpu=column.redis_cpu(),
                )
                config = column.server.config
                rows.append(
                    {
                        "config": config.key,
                        "server": config.server,
                        "members": members,
                        "round": turn,
                        "kind": "phase",
                        **asdict(stats),
                    }
                )
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)

    for senders in args.senders:
        # Saturate first: reference (a)'s median peak sets the fixed rate of the cell.
        await each_column(senders, args.seconds, None)
        peaks = [
            row["deliveries_per_second"]
            for row in rows
            if row["kind"] == "phase"
            and row["config"] == REFERENCE
            and row["senders"] == senders
            and row["mode"] == "saturate"
        ]
        if peaks and fixed_rate:
            rate = round(statistics.median(peaks) / 2 / (members - 1), 2)
            await each_column(senders, args.rate_seconds, rate)
        if args.light:
            await each_column(senders, args.rate_seconds, args.light)
    return rows


async def run_group(
    members: int,
    group: int,
    servers: list[str],
    args: argparse.Namespace,
    env: dict[str, str],
    log_dir: Path,
    redis: dict[str, tuple[str, psutil.Process]],
) -> list[dict[str, Any]]:
    """One group of columns: the joins of every round, then the phases on the last round's rooms."""
    rows: list[dict[str, Any]] = []
    one_at_a_time = one_room_at_a_time(servers, members, args.files)
    for turn in range(args.rounds):
        last = turn == args.rounds - 1
        with contextlib.ExitStack() as stack:
            columns = []
            for key in servers:
                config = CONFIGS[key]
                server_environment = dict(env)
                if config.redis:
                    server_environment["REDIS_URL"] = redis[key][0]
                if config.settings:
                    server_environment["DATABASE_URL"] = f"sqlite:///{own_database(log_dir, key)}"
                profile = None
                if args.profile and last and config.profilable:
                    profile = args.out / "profiles" / f"{key}-{members}-{group}.txt"
                server = MeasuredServer(
                    config, cpus=args.server_cpus, env=server_environment, log_dir=log_dir,
                    profile=profile,
                )  # fmt: skip
                stack.callback(server.process.stop)
                columns.append(Column(server.spawn(), redis[key][1] if config.redis else None))
            for column in columns:
                column.server.wait_ready()
            try:
                for column in rotated(columns, turn):
                    rows.append(await join(column, members, turn))
                    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
                    if one_at_a_time:
                        if column.room is not None and not args.joins_only:
                            phases = len([row for row in rows if row["kind"] == "phase"])
                            gc.collect()
                            gc.freeze()
                            rows += await run_phases(
                                Columns([column]),
                                members,
                                args,
                                turns=range(turn, turn + 1),
                                phase=phases,
                            )
                            gc.unfreeze()
                        await column.close_room()
                if last and not args.joins_only and not one_at_a_time:
                    # The generator's own collector would otherwise walk every
                    # member of every room now and then, a pause that reads
                    # as latency of whichever server is measured then.
                    gc.collect()
                    gc.freeze()
                    running = Columns([column for column in columns if column.room])
                    rows += await run_phases(running, members, args)
            finally:
                gc.unfreeze()
                for column in columns:
                    await column.close_room()
    return rows


async def run_matrix(args: argparse.Namespace, env: dict[str, str], log_dir: Path) -> list[dict]:
    rows: list[dict[str, Any]] = [conditions(args)]
    if args.profile:
        (args.out / "profiles").mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        # A redis-server of its own per Redis column: the columns run side by
        # side, their rooms have the same names, and pub/sub ignores databases.
        redis = {
            key: stack.enter_context(redis_server(cpus=args.server_cpus, log_dir=log_dir))
            for key in args.servers
            if CONFIGS[key].redis
        }
        for members in args.sizes:
            for group, servers in enumerate(column_groups(args.servers, members, args.files)):
                # Each group has its own reference (a): ratios pair rows of one group.
                group_rows = await run_group(members, group, servers, args, env, log_dir, redis)
                rows += [{**row, "group": group} for row in group_rows]
    rows.append({**conditions(args), "kind": "conditions-after"})
    return rows


def own_database(scratch_dir: Path, key: str) -> Path:
    """The database of a column with settings of its own (ServerConfig.settings)."""
    return scratch_dir / f"{key}.sqlite3"


def prepare_databases(servers: list[str], database: Path, scratch_dir: Path) -> None:
    """A copy of the run's database for each column with settings of its own, those applied."""
    for key in servers:
        config = CONFIGS[key]
        if not config.settings:
            continue
        copy = own_database(scratch_dir, key)
        shutil.copyfile(database, copy)
        assignments = [f"--set={name}={value}" for name, value in config.settings.items()]
        manage(server_env(copy), "chat_settings", *assignments)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl+C, so that every
    # server and redis-server this run started is stopped on the way out:
    # they run in process groups of their own and would outlive it.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    args.files = open_files_limit(max(args.sizes) * len(args.servers) + SPARE_FILES)
    os.sched_setaffinity(0, {int(cpu) for cpu in args.client_cpus.split(",")})
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chat-bench-") as scratch:
        scratch_dir = Path(scratch)
        env = server_env(scratch_dir / "bench.sqlite3")
        migrate(env)
        before = json.loads(manage(env, "chat_settings"))["rate_limit_per_second"]
        manage(env, "chat_settings", "--set", "rate_limit_per_second=0")
        prepare_databases(args.servers, scratch_dir / "bench.sqlite3", scratch_dir)
        try:
            rows = uvloop.run(run_matrix(args, env, scratch_dir))
        finally:
            manage(env, "chat_settings", "--set", f"rate_limit_per_second={before}")
    rows += report.phase_medians(rows) + report.join_medians(rows)
    rows += report.redis_ratios(rows) + report.redis_join_ratios(rows)
    rows += report.metrics_ratios(rows) + report.recovery_ratios(rows)
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
