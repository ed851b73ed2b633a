"""`python -m bench.slow_readers`: what a member that stops reading costs the others.

One chat process (uvicorn, as the README starts it, in-process layer) pinned
to `--server-cpus`, the generator on `--client-cpus`, as in bench.run. A room
of 500 (`--members`), 10 of them sending (`--senders`) at a fixed rate
(`--rate` messages/s in all, about 20,000 deliveries/s by default: well
under the process's peak, so that the latency measured is the relay's).
Each round runs three phases of `--seconds`, side by side in turn (the
order rotates from round to round, as bench.run's columns do):

- `none`: the room as it is;
- `stalled`: one more member, who joined and then reads nothing at all;
- `slow-link`: one more member reading at `--link` bytes a second.

Both extra members are bench's own raw clients (chat.testing.slow_client:
a small receive buffer and an Ethernet segment size, as across the
internet). For each phase: the others' latency (p50, p99), losses and
duplicates, and the process's resident memory above its value at the
start of the phase; the report gives medians over the rounds and each
extra phase's p99 over the `none` phase's of the same round.

Then the bound: in a room of its own, a stalled member against a flood of
the largest messages (`--flood-rate` messages/s of 1,900 characters) until
the process lets it go, which it must, with 4029: how long it took, how
much it read, and how high the process's memory rose, beside the same
flood without a stalled member.

Rows go to OUT/slow-readers-<time>.jsonl, the report to .md and stdout; the
exit status is 1 if a phase lost or doubled a message or the stalled member
was not let go.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvloop
from websockets.asyncio.client import connect as ws_connect

from chat.testing.servers import migrate, server_env
from chat.testing.slow_client import SlowClient, joined_member

from . import results
from .designs import DESIGNS
from .limits import open_files_limit
from .loadgen import Room
from .results import save
from .servers import CONFIGS, MeasuredServer, manage

PHASES = ("none", "stalled", "slow-link")
JOIN_TIMEOUT_SECONDS = 120.0
SPARE_FILES = 256
# The largest text SPEC allows is 2,000 characters; the flood's, with its header.
FLOOD_PAD = 1900
# How long the flood may take to make the process let the stalled member go.
FLOOD_SECONDS = 60.0
RSS_SAMPLE_SECONDS = 0.1
WATCHER = "watcher"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--rate", type=float, default=40.0, help="messages/s, all senders")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--link", type=float, default=4000.0, help="the slow link, bytes/s")
    parser.add_argument("--flood-rate", type=float, default=200.0, help="messages/s")
    parser.add_argument("--server-cpus", default="0")
    parser.add_argument("--client-cpus", default="1")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.members < 3 or not 1 <= args.senders < args.members:
        parser.error("need at least one round, 3 members, and fewer senders than members")
    return args


class RssPeak:
    """The highest resident memory of a process while the context runs, sampled."""

    def __init__(self, server: MeasuredServer) -> None:
        self.server = server
        self.start = self.peak = server.rss_bytes()

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self.server.rss_bytes())
            await asyncio.sleep(RSS_SAMPLE_SECONDS)

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[RssPeak]:
        task = asyncio.ensure_future(self._sample())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.peak = max(self.peak, self.server.rss_bytes())

    @property
    def rise_kib(self) -> int:
        return round((self.peak - self.start) / 1024)


class Watcher:
    """A member of a room that notes when each member leaves (loadgen sees only messages)."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.left: dict[str, float] = {}
        self.task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for text in self.ws:
            frame = json.loads(text)
            if frame.get("type") == "presence" and frame.get("event") == "leave":
                self.left[frame["name"]] = time.monotonic()


@contextlib.asynccontextmanager
async def watching(url: str) -> AsyncIterator[Watcher]:
    async with ws_connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "join", "name": WATCHER}))
        while json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] != "joined":
            pass
        watcher = Watcher(ws)
        try:
            yield watcher
        finally:
            watcher.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher.task


async def extra_member(url: str, name: str) -> SlowClient:
    """A raw member that has joined and read its `joined` frame, and reads nothing more."""
    client, _ = await joined_member(url, name, timeout=JOIN_TIMEOUT_SECONDS)
    client.frames.clear()
    return client


async def run_phase(
    server: MeasuredServer, room: Room, args: argparse.Namespace, kind: str, turn: int, phase: int
) -> dict[str, Any]:
    url = f"{server.ws_url}/websocket/ws_chat/bench"
    extra = None if kind == "none" else await extra_member(url, f"{kind}-{turn}")
    reading = None
    if kind == "slow-link":
        reading = asyncio.ensure_future(
            extra.read_for(args.seconds + 60, bytes_per_second=args.link)
        )
    await server.idle()
    peak = RssPeak(server)
    try:
        async with peak.watching():
            stats = await room.run_phase(
                phase=phase,
                senders=args.senders,
                seconds=args.seconds,
                window=1,
                rate=args.rate,
                server_cpu=server.cpu_seconds,
            )
    finally:
        if reading is not None:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading
        if extra is not None:
            extra.close()
    return {
        "kind": "phase",
        "phase": kind,
        "round": turn,
        "members": args.members + (extra is not None),
        "sent": stats.sent,
        "delivered": stats.delivered,
        "expected": stats.expected,
        "lost": stats.lost,
        "duplicated": stats.duplicated,
        "deliveries_per_second": stats.deliveries_per_second,
        "latency_ms": stats.latency_ms,
        "rss_rise_kib": peak.rise_kib,
        "extra_bytes_read": None if extra is None else extra.bytes_read,
        "extra_closed": None if extra is None else extra.close_code,
        "client_cpu_share": stats.client_cpu_share,
    }


async def flood(server: MeasuredServer, args: argparse.Namespace, *, stalled: bool) -> dict:
    """The largest messages into a small room, with a stalled member in it or not."""
    room_name = f"flood-{'stalled' if stalled else 'none'}"
    url = f"{server.ws_url}/websocket/ws_chat/{room_name}"
    room = Room(DESIGNS["chat"], server.ws_url, room_name, 2, pad=FLOOD_PAD)
    await room.join_all(deadline=time.monotonic() + JOIN_TIMEOUT_SECONDS)
    try:
        async with watching(url) as watcher:
            member = await extra_member(url, "stalled") if stalled else None
            await server.idle()
            peak = RssPeak(server)
            started = time.monotonic()
            async with peak.watching():
                # Phases of a second until the member is let go (or the time is up).
                phase = sent = 0
                while time.monotonic() - started < FLOOD_SECONDS:
                    phase += 1
                    stats = await room.run_phase(
                        phase=phase,
                        senders=1,
                        seconds=1.0,
                        window=1,
                        rate=args.flood_rate,
                        server_cpu=server.cpu_seconds,
                    )
                    sent += stats.sent
                    if not stalled and time.monotonic() - started >= 10:
                        break
                    if stalled and "stalled" in watcher.left:
                        break
            left = watcher.left.get("stalled")
            row = {
                "kind": "flood",
                "stalled": stalled,
                "messages": sent,
                "rss_rise_kib": peak.rise_kib,
            }
            if member is not None:
                row["let_go_seconds"] = None if left is None else round(left - started, 2)
                row["bytes_read_before"] = member.bytes_read
                # Now it reads again: what it was sent, then the close.
                with contextlib.suppress(TimeoutError):
                    await member.read_until_closed(30)
                row["close_code"] = member.close_code
                row["messages_it_got"] = len(member.messages())
                member.close()
            return row
    finally:
        await room.close()


async def run(args: argparse.Namespace, env: dict[str, str], log_dir: Path) -> list[dict]:
    rows: list[dict[str, Any]] = [
        results.conditions(
            members=args.members,
            senders=args.senders,
            rate=args.rate,
            seconds=args.seconds,
            rounds=args.rounds,
            link_bytes_per_second=args.link,
            flood_rate=args.flood_rate,
            server_cpus=args.server_cpus,
            client_cpus=args.client_cpus,
        )
    ]
    config = CONFIGS["chat-uvicorn"]
    with MeasuredServer(config, cpus=args.server_cpus, env=env, log_dir=log_dir) as server:
        room = Room(DESIGNS["chat"], server.ws_url, "bench", args.members)
        await room.join_all(deadline=time.monotonic() + JOIN_TIMEOUT_SECONDS)
        try:
            phase = 0
            for turn in range(args.rounds):
                shift = turn % len(PHASES)
                for kind in PHASES[shift:] + PHASES[:shift]:
                    phase += 1
                    row = await run_phase(server, room, args, kind, turn, phase)
                    print(json.dumps(row), file=sys.stderr)
                    rows.append(row)
        finally:
            await room.close()
        for stalled in (False, True):
            row = await flood(server, args, stalled=stalled)
            print(json.dumps(row), file=sys.stderr)
            rows.append(row)
    return rows


def report(rows: list[dict[str, Any]]) -> str:
    phases = [row for row in rows if row["kind"] == "phase"]
    baseline = {row["round"]: row["latency_ms"]["p99"] for row in phases if row["phase"] == "none"}
    lines = [
        "| phase | members | p50 ms | p99 ms | p99 over none: median (range) | lost | doubled "
        "| memory rise KiB | extra member read KiB | rounds |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for kind in PHASES:
        mine = [row for row in phases if row["phase"] == kind]
        if not mine:
            continue
        ratios = [row["latency_ms"]["p99"] / baseline[row["round"]] for row in mine]
        read = [row["extra_bytes_read"] for row in mine if row["extra_bytes_read"] is not None]
        lines.append(
            f"| {kind} | {mine[0]['members']} "
            f"| {statistics.median(r['latency_ms']['p50'] for r in mine):.2f} "
            f"| {statistics.median(r['latency_ms']['p99'] for r in mine):.2f} "
            f"| {statistics.median(ratios):.2f}x ({min(ratios):.2f}x to {max(ratios):.2f}x) "
            f"| {sum(r['lost'] for r in mine)} | {sum(r['duplicated'] for r in mine)} "
            f"| {statistics.median(r['rss_rise_kib'] for r in mine):.0f} "
            f"| {statistics.median(read) / 1024 if read else 0:.0f} | {len(mine)} |"
        )
    lines += [
        "",
        "| flood | messages | memory rise KiB | let go after s | close | read before KiB "
        "| messages it got |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in (row for row in rows if row["kind"] == "flood"):
        stalled = row["stalled"]
        lines.append(
            f"| {'a stalled member' if stalled else 'nobody stalled'} | {row['messages']} "
            f"| {row['rss_rise_kib']} | {row.get('let_go_seconds', '')} "
            f"| {row.get('close_code', '')} "
            f"| {round(row['bytes_read_before'] / 1024) if stalled else ''} "
            f"| {row.get('messages_it_got', '')} |"
        )
    return "\n".join(lines)


def failed(rows: list[dict[str, Any]]) -> bool:
    phases = [row for row in rows if row["kind"] == "phase"]
    lost = any(row["lost"] or row["duplicated"] for row in phases)
    let_go = [row for row in rows if row["kind"] == "flood" and row["stalled"]]
    return lost or any(row["close_code"] != 4029 for row in let_go)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    open_files_limit(args.members + SPARE_FILES)
    os.sched_setaffinity(0, {int(cpu) for cpu in args.client_cpus.split(",")})
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chat-slow-readers-") as scratch:
        scratch_dir = Path(scratch)
        env = server_env(scratch_dir / "bench.sqlite3")
        migrate(env)
        manage(env, "chat_settings", "--set", "rate_limit_per_second=0")
        rows = uvloop.run(run(args, env, scratch_dir))
    save(args.out, "slow-readers", rows, report(rows))
    return 1 if failed(rows) else 0


if __name__ == "__main__":
    sys.exit(main())
