"""Two versions of the presence claim and release scripts, interleaved on one redis-server.

    .venv/bin/python -m bench.claim_ab BEFORE_CHECKOUT [AFTER_CHECKOUT]

This machine's speed drifts by more between two runs of bench.claim_cost
than a command more or less in a script costs, so this runs both versions'
lua/ scripts (chat/presence/lua of each checkout; AFTER defaults to this
one) in one redis-server, in alternating batches, and reports the median of
Redis's own microseconds per call (`INFO commandstats`) for each. Both get
this checkout's ARGV: a BEFORE whose claim takes fewer arguments ignores
the trailing ones (the address, the limit, the take-over, the process's
copy of the list), so its leading ones must be the same. Each claim passes
the copy of the list a process would keep after the previous one
(chat.presence.listing), so an AFTER that sends only what is new is
measured as a serving process would run it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import redis

from chat.presence.base import COALESCE_ABOVE_MEMBERS
from chat.testing.redis_server import RedisServer

from .claim_cost import ADDRESS

LUA = Path("chat/presence/lua")
# Small rooms take many rounds, large ones a few: similar time per size.
ROUNDS = {10: 200, 2500: 6}


def scripts(checkout: Path) -> dict[str, str]:
    lua = checkout / LUA
    lib = (lua / "lib.lua").read_text()
    return {name: lib + "\n" + (lua / f"{name}.lua").read_text() for name in ("claim", "release")}


def process_copy(reply: list) -> tuple[str, int]:
    """The epoch and size of the list a process keeps after this claim's reply ("", 0: none).

    As chat.presence.listing keeps it: for rooms above COALESCE_ABOVE_MEMBERS,
    and only from a script that answers with the list's epoch (a BEFORE
    whose claim returns the list itself keeps nothing).
    """
    count, names = reply[0], reply[1]
    if not isinstance(names, list) or count <= COALESCE_ABOVE_MEMBERS or not names[0]:
        return ("", 0)
    epoch, offset, piece = names
    return (epoch.decode(), int(offset) + len(piece))


def usec(client: redis.Redis) -> int:
    return int(client.info("commandstats").get("cmdstat_evalsha", {}).get("usec", 0))


def compare(url: str, versions: dict[str, dict[str, str]], members: int, rounds: int) -> None:
    client = redis.Redis.from_url(url)
    shas = {tag: {k: client.script_load(v) for k, v in s.items()} for tag, s in versions.items()}
    spent: dict[str, tuple[list[float], list[float]]] = {tag: ([], []) for tag in versions}
    order = list(versions)
    for round_ in range(rounds):
        for tag in order if round_ % 2 == 0 else order[::-1]:
            prefix = f"{tag}{round_}:"
            before = usec(client)
            known: tuple[str, int] = ("", 0)
            for i in range(members):
                reply = client.evalsha(
                    shas[tag]["claim"], 0, prefix, "room", f"m{i}", f"s{i}", f'"M{i}"',
                    f"ch.{i}", 10_000, COALESCE_ABOVE_MEMBERS, 10_000, ADDRESS, 0, "", *known,
                )  # fmt: skip
                known = process_copy(reply)
            claimed = usec(client)
            for i in range(members):
                client.evalsha(
                    shas[tag]["release"],
                    0,
                    prefix,
                    "room",
                    f"m{i}",
                    f"ch.{i}",
                    COALESCE_ABOVE_MEMBERS,
                    10_000,
                )
            spent[tag][0].append((claimed - before) / members)
            spent[tag][1].append((usec(client) - claimed) / members)
    client.close()
    for tag, (claims, releases) in spent.items():
        print(
            f"| {members} | {tag} | {statistics.median(claims):.1f} "
            f"| {statistics.median(releases):.1f} |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path, nargs="?", default=Path("."))
    args = parser.parse_args(argv)
    versions = {"before": scripts(args.before), "after": scripts(args.after)}
    print("| members | scripts | Redis µs per claim | Redis µs per release |")
    print("|--:|---|--:|--:|")
    with tempfile.TemporaryDirectory(prefix="chat-claim-ab-") as scratch:
        server = RedisServer(Path(scratch) / "redis.log").start()
        try:
            for members, rounds in ROUNDS.items():
                compare(server.url, versions, members, rounds)
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
