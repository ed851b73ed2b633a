"""What one join costs Redis: the presence registry's claim and release scripts, timed by Redis.

    .venv/bin/python -m bench.claim_cost [--members 10 2500] [--rounds 5]

For each room size N, a registry (chat.presence.redis) on a throw-away
redis-server on a free loopback port claims N names in one room, one claim
at a time as a reconnect storm's joins arrive, then releases them. Redis's
own figure for the scripts (`INFO commandstats`: microseconds per EVALSHA)
is the cost per join that every process shares, so it is the one reported;
this process's wall time per claim, round trip included, is beside it. The
median of `--rounds` rounds, because this machine's speed drifts
(docs/performance.md).
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis
import uvloop

from chat.presence.redis import RedisPresence
from chat.testing.redis_server import RedisServer

ROOM = "bench"
# A client address as the scope gives it, as long as most IPv6 addresses.
ADDRESS = "2001:db8:85a3:8d3:1319:8a2e:370:7348"


def evalsha_usec(client: redis.Redis) -> tuple[int, int]:
    """Calls of EVALSHA so far and the microseconds Redis spent in them."""
    stats = client.info("commandstats").get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0)), int(stats.get("usec", 0))


async def one_round(presence: RedisPresence, client: redis.Redis, members: int) -> dict[str, float]:
    # Whether this registry stores the client address with each entry.
    extra: dict[str, Any] = {}
    if "address" in inspect.signature(presence.claim).parameters:
        extra["address"] = ADDRESS
    names = [f"Member{index}" for index in range(members)]
    calls, usec = evalsha_usec(client)
    started = time.perf_counter()
    for index, name in enumerate(names):
        claim = await presence.claim(room=ROOM, name=name, member=f"bench.{index}", **extra)
        assert claim.won
    wall = time.perf_counter() - started
    claimed_calls, claimed_usec = evalsha_usec(client)
    for index, name in enumerate(names):
        await presence.release(room=ROOM, name=name, member=f"bench.{index}")
    released_calls, released_usec = evalsha_usec(client)
    assert claimed_calls - calls == members and released_calls - claimed_calls == members
    return {
        "claim_us": (claimed_usec - usec) / members,
        "release_us": (released_usec - claimed_usec) / members,
        "claim_wall_us": wall * 1e6 / members,
    }


async def measure(args: argparse.Namespace, url: str) -> list[dict[str, Any]]:
    client = redis.Redis.from_url(url)
    # A large room's joins go into its shared diff: no diffs here, only the claim.
    presence = RedisPresence(url, upkeep=False, coalesce_above=10**9)
    rows = []
    try:
        for members in args.members:
            rounds = [await one_round(presence, client, members) for _ in range(args.rounds)]
            row: dict[str, Any] = {"members": members}
            for key in rounds[0]:
                row[key] = round(statistics.median(r[key] for r in rounds), 1)
            rows.append(row)
    finally:
        await presence.aclose()
        client.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, nargs="+", default=[10, 2500])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="chat-claim-cost-") as scratch:
        server = RedisServer(Path(scratch) / "redis.log").start()
        try:
            rows = uvloop.run(measure(args, server.url))
        finally:
            server.stop()
    print("| members | Redis µs per claim | Redis µs per release | wall µs per claim |")
    print("|--:|--:|--:|--:|")
    for row in rows:
        print(
            f"| {row['members']} | {row['claim_us']} | {row['release_us']} "
            f"| {row['claim_wall_us']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
