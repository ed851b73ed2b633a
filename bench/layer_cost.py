"""The CPU a room's message costs in the channel layer itself, in one process.

    .venv/bin/python -m bench.layer_cost [--members 1 50 500] [--messages 20000] [--rounds 3]

For each room size N, the in-process layer (chat.layers.memory) and the Redis layer
(chat.layers.redis, on a throw-away redis-server on a free loopback port)
each relay `--messages` group events to N member tasks of this process, which
read them as a room's consumers do (through the layer's `receiver` when it
has one). One event per turn of the event loop, as when a server's members
send at chat pace. No sockets and no consumers: the figure is the layer's
own cost, this process's CPU time per message and per delivery; redis-server's
CPU is not in it. The layers take turns for `--rounds` rounds and the median
is reported, because this machine's speed drifts by tens of percent between
runs (docs/performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop

from chat.dispatch import Source, channel_receiver
from chat.layers.memory import ChatChannelLayer
from chat.layers.redis import ChatRedisChannelLayer
from chat.testing.redis_server import RedisServer

GROUP = "bench"
EVENT = {"type": "chat.broadcast", "text": '{"type":"message","message":"' + "x" * 80 + '"}'}


async def relay(layer: Any, members: int, messages: int) -> float:
    """Process CPU seconds for `messages` group events to `members` reading tasks."""
    channels = [await layer.new_channel() for _ in range(members)]
    for channel in channels:
        await layer.group_add(GROUP, channel)

    async def member(receive: Source) -> None:
        # As chat.dispatch reads a source: an event at hand, or an awaitable of it.
        for _ in range(messages):
            event = receive()
            if not isinstance(event, dict):
                await event

    readers = [channel_receiver(layer, channel) for channel in channels]
    tasks = [asyncio.ensure_future(member(receive)) for receive in readers]
    started = time.process_time()
    for _ in range(messages):
        await layer.group_send(GROUP, EVENT)
        await asyncio.sleep(0)
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    if isinstance(layer, ChatRedisChannelLayer):
        # Its subscriber reads Redis's copies of the events in order: once
        # this probe is back, it has read (and skipped) every one of them.
        await asyncio.wait_for(layer.roundtrip(), 60)
    spent = time.process_time() - started
    for channel, receive in zip(channels, readers, strict=True):
        await layer.group_discard(GROUP, channel)
        receive.close()
    return spent


async def measure(args: argparse.Namespace, redis_url: str) -> list[dict[str, Any]]:
    makers = {
        "in-process": ChatChannelLayer,
        "redis": functools.partial(ChatRedisChannelLayer, url=redis_url),
    }
    rows = []
    for members in args.members:
        spent: dict[str, list[float]] = {name: [] for name in makers}
        for _ in range(args.rounds):
            for name, make in makers.items():
                layer = make(capacity=args.messages + 10)
                try:
                    spent[name].append(await relay(layer, members, args.messages))
                finally:
                    await layer.close()
        for name, seconds in spent.items():
            per_message = statistics.median(seconds) * 1e6 / args.messages
            rows.append(
                {
                    "members": members,
                    "layer": name,
                    "us_per_message": round(per_message, 1),
                    "us_per_delivery": round(per_message / members, 2),
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, nargs="+", default=[1, 50, 500])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="chat-layer-cost-") as scratch:
        redis = RedisServer(Path(scratch) / "redis.log").start()
        try:
            rows = uvloop.run(measure(args, redis.url))
        finally:
            redis.stop()
    print("| members | layer | µs per message | µs per delivery | vs in-process |")
    print("|--:|---|--:|--:|--:|")
    local = {row["members"]: row["us_per_message"] for row in rows if row["layer"] == "in-process"}
    for row in rows:
        ratio = row["us_per_message"] / local[row["members"]]
        print(
            f"| {row['members']} | {row['layer']} | {row['us_per_message']} "
            f"| {row['us_per_delivery']} | {ratio:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
