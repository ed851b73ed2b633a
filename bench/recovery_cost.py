"""What the recovery window costs: bytes per room at the defaults, and Redis CPU per message.

    .venv/bin/python -m bench.recovery_cost [--rooms 100] [--messages 2000] [--rounds 5]

Memory: `--rooms` rooms each receive more messages than the window keeps
(the defaults: 100 messages, 120 s), with a typical frame (a 60-character
message from an 8-character name). In process, the layer's windows are
measured with tracemalloc; on Redis (a throw-away redis-server on a free
loopback port), `MEMORY USAGE` of each room's stream and position keys.

Redis CPU: Redis's own figure (`INFO commandstats`, microseconds per call)
for the layer's numbering script (HINCRBY, XADD MAXLEN, PEXPIRE, PUBLISH)
against the first edition's plain PUBLISH of the same event, interleaved
round by round on one Redis; medians of `--rounds`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import tracemalloc
from pathlib import Path

import redis

from chat import events, protocol
from chat.defaults import RECOVERY_MESSAGES, RECOVERY_SECONDS
from chat.layers.memory import ChatChannelLayer
from chat.layers.redis import ChatRedisChannelLayer
from chat.testing.redis_server import RedisServer

NAME = "Seiya123"
TEXT = "x" * 60


def event(n: int) -> dict:
    frame = protocol.message_frame(
        room="bench", name=NAME, message=TEXT, id=f"0123456789ab-{n:x}", ts=1_796_000_000_000 + n
    )
    return events.message_event(frame, sender="specific.0123456789abcdef!1", ack=None)


async def fill(layer, rooms: int) -> None:
    for room in range(rooms):
        for n in range(RECOVERY_MESSAGES + 10):
            await layer.group_send_numbered(
                f"chat.room{room}", event(n), keep=RECOVERY_MESSAGES, seconds=RECOVERY_SECONDS
            )


def memory_in_process(rooms: int) -> float:
    """Bytes per room of the in-process windows, full at the defaults."""

    async def measure() -> float:
        layer = ChatChannelLayer()
        await layer.group_send_numbered("chat.warm", event(0), keep=1, seconds=1)
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        await fill(layer, rooms)
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        return (after - before) / rooms

    return asyncio.run(measure())


def commandstats(client: redis.Redis, command: str) -> tuple[int, int]:
    stats = client.info("commandstats").get(f"cmdstat_{command}", {})
    return int(stats.get("calls", 0)), int(stats.get("usec", 0))


async def redis_figures(url: str, rooms: int, messages: int, rounds: int) -> dict:
    client = redis.Redis.from_url(url)
    layer = ChatRedisChannelLayer(url)
    try:
        # A member in each room, so the process subscribes as when serving.
        for room in range(rooms):
            await layer.group_add(f"chat.room{room}", await layer.new_channel())
        await fill(layer, rooms)
        await layer.group_position("chat.room0")  # every script has run
        sizes = [
            client.memory_usage(f"chat:layer:stream:chat.room{room}", samples=0)
            + client.memory_usage(f"chat:layer:window:chat.room{room}", samples=0)
            for room in range(rooms)
        ]
        numbered, plain = [], []
        channel = b"chat:layer:group:chat.room0"
        for _ in range(rounds):
            calls, usec = commandstats(client, "evalsha")
            for n in range(messages):
                await layer.group_send_numbered(
                    "chat.room0", event(n), keep=RECOVERY_MESSAGES, seconds=RECOVERY_SECONDS
                )
            await layer.group_position("chat.room0")
            calls2, usec2 = commandstats(client, "evalsha")
            numbered.append((usec2 - usec) / (calls2 - calls))
            calls, usec = commandstats(client, "publish")
            payload = b"0123456789abcdef " + protocol.encode(event(0)).encode()
            pipe = client.pipeline(transaction=False)
            for _ in range(messages):
                pipe.publish(channel, payload)
            pipe.execute()
            calls2, usec2 = commandstats(client, "publish")
            plain.append((usec2 - usec) / (calls2 - calls))
        return {
            "bytes_per_room": statistics.median(sizes),
            "numbered_usec": statistics.median(numbered),
            "publish_usec": statistics.median(plain),
        }
    finally:
        await layer.flush()
        await layer.close()
        client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=100)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    in_process = memory_in_process(args.rooms)
    with tempfile.TemporaryDirectory(prefix="chat-bench-") as scratch:
        server = RedisServer(Path(scratch) / "redis.log").start()
        try:
            figures = asyncio.run(redis_figures(server.url, args.rooms, args.messages, args.rounds))
        finally:
            server.stop()
    print(f"window at the defaults ({RECOVERY_MESSAGES} messages, {RECOVERY_SECONDS} s), per room:")
    print(f"  in process: {in_process / 1024:.1f} KiB")
    redis_kib = figures["bytes_per_room"] / 1024
    print(f"  Redis:      {redis_kib:.1f} KiB (MEMORY USAGE, stream + position)")
    print("Redis CPU per message (INFO commandstats, median of rounds):")
    print(f"  numbering script (HINCRBY, XADD, PUBLISH...): {figures['numbered_usec']:.2f} µs")
    print(f"  plain PUBLISH (first edition):                {figures['publish_usec']:.2f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
