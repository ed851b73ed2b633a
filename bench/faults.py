"""`python -m bench.faults`: faults under steady traffic, and what the members lost.

For each fault, a fresh deployment (bench.deployment: two uvicorn processes
as the README starts them, one test-started Redis), 200 members
(`--members`) in 4 rooms (`--rooms`) split over both processes, each saying
something about every 2 s (`--interval`) and reconnecting as the page does
(bench.crowd: 1012 within a second, else backoff; a rejoin carries the
`resume` token and the last offset received). After `--before` seconds of
steady traffic:

- `kill`: process 0 gets SIGKILL and is started again on its port, as
  systemd's `Restart=always` would;
- `term`: process 0 gets SIGTERM (a rolling restart: it drains, closing its
  connections with 1012) and is started again once it has exited;
- `redis`: Redis is stopped, started again 5 s later on the same port
  (`--redis-down`), empty, as it keeps nothing on disk.

The traffic goes on until every member is back and has had a message
acknowledged, then `--after` seconds more. What each fault reports:

- the members who stayed connected throughout, and what they lost
  (offsets they never got): must be 0, acknowledged or not;
- the members who rejoined: how many recovered (`recovered: true`) and what
  those lost (must be 0: the replay fills the gap), how many could not
  (`recovered: false`, after Redis lost the window) and the messages they
  were told they may have missed;
- duplicates, and offsets whose content two members saw differently (0);
- messages sent whose acknowledgement never came (the sender's connection
  went first), and how many of those reached the room anyway;
- how long until everyone could talk again: from the fault until each
  member that was disconnected had rejoined and had a message acknowledged
  (the slowest, and the median);
- for `term`, the drain: its exit status and how long it took.

Rows go to OUT/faults-<time>.jsonl, the report to OUT/faults-<time>.md and
standard output; the exit status is 1 if a member that stayed or recovered
lost anything.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvloop

from . import results
from .crowd import Crowd, Member
from .deployment import Deployment
from .limits import open_files_limit
from .results import save

FAULTS = ("kill", "term", "redis")
SPARE_FILES = 512
JOIN_SECONDS = 60.0
# After the fault: everybody back and talking within this, or the fault fails.
BACK_SECONDS = 90.0
DRAIN_SECONDS = 30.0
# SPEC: a drained process exits within 10 s; a loaded machine gets slack.
EXIT_SECONDS = 30.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", nargs="+", choices=FAULTS, default=list(FAULTS))
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--rooms", type=int, default=4)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--before", type=float, default=10.0, help="steady seconds before")
    parser.add_argument("--after", type=float, default=10.0, help="steady seconds after")
    parser.add_argument("--redis-down", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    return parser.parse_args(argv)


async def kill(deployment: Deployment, args: argparse.Namespace) -> dict[str, Any]:
    deployment.servers[0].kill()
    await asyncio.to_thread(deployment.restart, 0)
    return {}


async def term(deployment: Deployment, args: argparse.Namespace) -> dict[str, Any]:
    server = deployment.servers[0]
    started = time.monotonic()
    os.killpg(server.process.pid, signal.SIGTERM)
    await Crowd.until(lambda: server.process.poll() is not None, EXIT_SECONDS)
    row = {
        "exit_status": server.process.returncode,
        "exit_seconds": round(time.monotonic() - started, 2),
    }
    await asyncio.to_thread(deployment.restart, 0)
    return row


async def redis_outage(deployment: Deployment, args: argparse.Namespace) -> dict[str, Any]:
    await asyncio.to_thread(deployment.redis.stop)
    await asyncio.sleep(args.redis_down)
    await asyncio.to_thread(deployment.redis.start)
    return {"redis_down_seconds": args.redis_down}


ACTIONS: dict[str, Callable[[Deployment, argparse.Namespace], Awaitable[dict[str, Any]]]] = {
    "kill": kill,
    "term": term,
    "redis": redis_outage,
}


async def run_fault(fault: str, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    """One fault on a fresh deployment (its files in `scratch`): its row of figures."""
    with Deployment(scratch) as deployment:
        crowd = Crowd(
            deployment.urls, members=args.members, rooms=args.rooms, interval=args.interval
        )
        traffic = None
        try:
            await crowd.join_all(within=JOIN_SECONDS)
            traffic = asyncio.ensure_future(crowd.traffic())
            await asyncio.sleep(args.before)
            fault_at = time.monotonic()
            detail = await ACTIONS[fault](deployment, args)
            back = await back_and_talking(crowd, fault_at)
            await asyncio.sleep(args.after)
            crowd.sending = False
            await traffic
            drained = await crowd.drain(within=DRAIN_SECONDS)
            # Before the crowd is closed: closing is no fault's doing.
            row = {
                "kind": "fault",
                "fault": fault,
                **detail,
                **figures(crowd, fault_at),
                "back_within_deadline": back,
                "drained": drained,
            }
            row.update(await crowd.presence_check())
        finally:
            if traffic is not None:
                traffic.cancel()
            await crowd.close()
    return {**row, "loadavg": os.getloadavg()[0]}


async def back_and_talking(crowd: Crowd, fault_at: float) -> bool:
    """Until every member is joined and each one that went down has talked since."""

    def done() -> bool:
        return all(
            member.state == "joined" and (not went_down(member, fault_at) or member.talked_at)
            for member in crowd.members
        )

    try:
        await crowd.until(done, BACK_SECONDS)
    except TimeoutError:
        return False
    return True


def went_down(member: Member, fault_at: float) -> bool:
    return member.down_at is not None and member.down_at >= fault_at


def figures(crowd: Crowd, fault_at: float) -> dict[str, Any]:
    stayed = [m for m in crowd.members if not went_down(m, fault_at)]
    down = [m for m in crowd.members if went_down(m, fault_at)]
    recovered = [m for m in down if m.counts.not_recovered == 0]
    not_recovered = [m for m in down if m.counts.not_recovered > 0]
    ledger = crowd.ledger

    def lost(members: list[Member]) -> int:
        return sum(m.counts.lost + tail(m) for m in members)

    def tail(member: Member) -> int:
        if member.state != "joined":
            return 0
        return max(0, ledger.top(member.room, member.epoch) - member.last)

    talk = [m.talked_at - fault_at for m in down if m.talked_at is not None]
    rejoin = [m.rejoined_at - fault_at for m in down if m.rejoined_at is not None]
    totals = crowd.totals()
    return {
        "members": len(crowd.members),
        "stayed": len(stayed),
        "stayed_lost": lost(stayed),
        "rejoined": len(down),
        "recovered": len(recovered),
        "recovered_lost": lost(recovered),
        "not_recovered": len(not_recovered),
        "not_recovered_lost_untold": lost(not_recovered),
        "missed_told": totals.missed_told,
        "doubled": totals.doubled + ledger.relayed_twice,
        "content_mismatched": ledger.mismatched,
        "sent": totals.sent,
        "acked": totals.acked,
        "unconfirmed": totals.unconfirmed,
        "refused_attempts": totals.refused_attempts,
        "unconfirmed_that_reached_the_room": sum(
            ledger.holds(room, key) for room, key in crowd.unconfirmed
        ),
        "rejoin_seconds_max": _round(max(rejoin, default=None)),
        "talk_again_seconds_max": _round(max(talk, default=None)),
        "talk_again_seconds_median": _round(statistics.median(talk) if talk else None),
        "talked_again": len(talk),
        "closes": {str(code): n for code, n in sorted(totals.closes.items())},
        "errors": dict(sorted(totals.errors.items())),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def failed(row: dict[str, Any]) -> bool:
    """A member that stayed or recovered lost something, or something came twice or wrong."""
    return bool(
        row["stayed_lost"]
        or row["recovered_lost"]
        or row["not_recovered_lost_untold"]
        or row["doubled"]
        or row["content_mismatched"]
        or not row["back_within_deadline"]
        or not row["drained"]
    )


def markdown(rows: list[dict[str, Any]]) -> str:
    first = rows[0]
    faults = [row for row in rows if row["kind"] == "fault"]
    lines = [
        f"# Faults under load: {first['members']} members, {first['rooms']} rooms, "
        f"a message every {first['interval']:g} s each",
        "",
        f"Started {first['time']}, load average {first['loadavg'][0]:.2f} at the start; "
        f"{first['cpus']} CPUs.",
        "",
        "| | " + " | ".join(row["fault"] for row in faults) + " |",
        "|---|" + "---|" * len(faults),
    ]
    keys = dict.fromkeys(k for row in faults for k in row if k not in ("kind", "fault"))
    for key in keys:
        lines.append(f"| {key} | " + " | ".join(str(row.get(key, "")) for row in faults) + " |")
    return "\n".join(lines)


def conditions(args: argparse.Namespace) -> dict[str, Any]:
    return results.conditions(members=args.members, rooms=args.rooms, interval=args.interval)


async def run_all(args: argparse.Namespace, scratch: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [conditions(args)]
    for fault in args.faults:
        rows.append(await run_fault(fault, args, scratch / fault))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    open_files_limit(args.members + SPARE_FILES)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chat-faults-") as scratch:
        for fault in args.faults:
            (Path(scratch) / fault).mkdir()
        rows = uvloop.run(run_all(args, Path(scratch)))
    save(args.out, "faults", rows, markdown(rows))
    return 1 if any(failed(row) for row in rows if row["kind"] == "fault") else 0


if __name__ == "__main__":
    sys.exit(main())
