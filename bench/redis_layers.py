"""Compare the Redis channel layers on the chat's traffic, on a throwaway Redis.

channels-redis's two layers and ours (chat.layers.redis.ChatRedisChannelLayer).

    .venv/bin/python bench/redis_layers.py [--members 50] [--messages 1000]

For each layer, two independent layer instances stand in for two server
processes (as channels-redis's own tests do). A room's members are split
between them; one member sends numbered messages to the room's group, and
every member must receive every message once, in order: first as fast as the
sender can (throughput), then at a chat-like pace (latency). Then the room
lives through a Redis restart (stop, then start on the same port, nothing
kept on disk): how many sends fail, how many accepted messages are lost,
whether a receiver notices, and whether delivery resumes without rejoining.

Loopback only: the script starts its own redis-server on a free port and
stops it. Bounded: a fixed number of messages, and every wait has a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer

from chat.events import UNAVAILABLE as UNAVAILABLE_EVENT
from chat.layers.redis import ChatRedisChannelLayer
from chat.redis.errors import REDIS_ERRORS
from chat.testing.redis_server import RedisServer

LAYERS: dict[str, Any] = {
    "RedisChannelLayer": RedisChannelLayer,
    "RedisPubSubChannelLayer": RedisPubSubChannelLayer,
    "ChatRedisChannelLayer": ChatRedisChannelLayer,
}
GROUP = "chat.bench"
# What a Redis outage raises in a layer call, a deadline included.
OUTAGE = (*REDIS_ERRORS, TimeoutError)
# How long receivers may take to catch up before the rest counts as lost.
DRAIN_SECONDS = 10.0
# A send that takes longer than this during the outage counts as failed.
SEND_TIMEOUT_SECONDS = 2.0
# How long stopping the receivers and flushing a layer may take.
CLEANUP_SECONDS = 6.0
# Latency at a chat-like pace: a busy room, not a flood.
PACED_RATE = 50.0
PACED_MESSAGES = 150
# The restart run: messages a second, and when Redis goes down and returns.
RESTART_RATE = 100
RESTART_DOWN_AT = 1.0
RESTART_UP_AT = 2.0
RESTART_END_AT = 4.0
# Messages sent this long after Redis is back count as "after the restart".
RESTART_SETTLE_SECONDS = 0.5


@dataclass
class Receiver:
    """One room member: records what it receives, counts the errors it sees."""

    channel: str
    layer: Any
    seen: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    target: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        """Receive until cancelled; an outage error is counted and the receive retried."""
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except OUTAGE:
                self.errors += 1
                await asyncio.sleep(0.1)
                continue
            if message["type"] == UNAVAILABLE_EVENT:
                # Our layer tells its members of an outage with an event.
                self.errors += 1
                continue
            self.seen.append(message["seq"])
            self.latencies.append(time.perf_counter() - message["sent"])
            if len(self.seen) >= self.target:
                self.done.set()


def layer_config(kind: str, url: str) -> dict:
    if kind == "ChatRedisChannelLayer":
        return {"url": url, "capacity": 10_000}
    host = {"address": url, "socket_timeout": 15, "socket_connect_timeout": 2}
    if kind == "RedisChannelLayer":
        return {"hosts": [host], "capacity": 10_000, "group_expiry": 3600}
    return {"hosts": [host]}


class Room:
    """Members split over two layer instances, as over two processes."""

    def __init__(self, kind: str, url: str) -> None:
        self.layers = [LAYERS[kind](**layer_config(kind, url)) for _ in range(2)]
        self.receivers: list[Receiver] = []
        self.tasks: list[asyncio.Task] = []

    async def __aenter__(self) -> Room:
        return self

    async def fill(self, members: int, target: int) -> None:
        for index in range(members):
            layer = self.layers[index % 2]
            channel = await layer.new_channel()
            await layer.group_add(GROUP, channel)
            receiver = Receiver(channel, layer, target=target)
            self.receivers.append(receiver)
            self.tasks.append(asyncio.ensure_future(receiver.run()))
        # Let the pub/sub layer's subscriptions reach Redis before timing.
        await asyncio.sleep(0.3)

    async def send(self, seq: int) -> None:
        event = {"type": "chat.bench", "seq": seq, "sent": time.perf_counter()}
        await self.layers[0].group_send(GROUP, event)

    async def drain(self) -> None:
        waits = asyncio.gather(*(receiver.done.wait() for receiver in self.receivers))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waits, DRAIN_SECONDS)

    async def __aexit__(self, *exc_info: object) -> None:
        for task in self.tasks:
            task.cancel()
        # A receive cancelled inside redis-py's blocking read can take one more
        # round before it notices; never wait on it for long.
        await asyncio.wait(self.tasks, timeout=CLEANUP_SECONDS)
        for layer in self.layers:
            with contextlib.suppress(*OUTAGE):
                await asyncio.wait_for(layer.flush(), CLEANUP_SECONDS)
            if isinstance(layer, ChatRedisChannelLayer):
                await layer.close()


def in_order(seen: list[int]) -> bool:
    return all(a < b for a, b in itertools.pairwise(seen))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return round(1000 * ordered[int(fraction * (len(ordered) - 1))], 1)


async def steady(kind: str, url: str, members: int, messages: int, rate: float | None) -> dict:
    """Send `messages` to the room as fast as possible (rate None) or `rate` a second."""
    async with Room(kind, url) as room:
        await room.fill(members, target=messages)
        start = time.perf_counter()
        for seq in range(messages):
            await room.send(seq)
            if rate:
                await asyncio.sleep(max(0.0, start + (seq + 1) / rate - time.perf_counter()))
        sending = time.perf_counter() - start
        await room.drain()
        elapsed = time.perf_counter() - start
        receivers = room.receivers
    delivered = sum(len(r.seen) for r in receivers)
    latencies = [x for r in receivers for x in r.latencies]
    return {
        "sends_per_s": round(messages / sending),
        "deliveries_per_s": round(delivered / elapsed),
        "lost": members * messages - delivered,
        "duplicated": sum(len(r.seen) - len(set(r.seen)) for r in receivers),
        "out_of_order_receivers": sum(not in_order(r.seen) for r in receivers),
        "latency_ms_p50": percentile(latencies, 0.5),
        "latency_ms_p99": percentile(latencies, 0.99),
    }


async def restart(kind: str, server: RedisServer, members: int) -> dict:
    """Send at RESTART_RATE while Redis stops and starts again."""
    accepted: dict[int, float] = {}
    failed = 0
    async with Room(kind, server.url) as room:
        await room.fill(members, target=10**9)  # never "done": drain waits its deadline
        start = time.perf_counter()
        up_at = None
        for seq in itertools.count():
            now = time.perf_counter() - start
            if now >= RESTART_END_AT:
                break
            if now >= RESTART_DOWN_AT and up_at is None and server.process.poll() is None:
                await asyncio.to_thread(server.stop)
            elif now >= RESTART_UP_AT and up_at is None:
                await asyncio.to_thread(server.start)
                up_at = time.perf_counter() - start
            try:
                await asyncio.wait_for(room.send(seq), SEND_TIMEOUT_SECONDS)
                accepted[seq] = now
            except OUTAGE:
                failed += 1
            await asyncio.sleep(1 / RESTART_RATE)
        sent = seq
        await asyncio.sleep(1.0)  # a fixed window for stragglers; nothing else to wait on
        receivers = room.receivers
    after = {s for s, t in accepted.items() if t >= (up_at or 0) + RESTART_SETTLE_SECONDS}
    got = [set(r.seen) for r in receivers]
    return {
        "sent": sent,
        "send_errors": failed,
        "accepted_not_delivered_per_member": sum(len(accepted.keys() - g) for g in got) // members,
        "receivers_that_saw_an_error": sum(r.errors > 0 for r in receivers),
        "delivered_after_restart_without_rejoin": (
            f"{sum(len(after & g) for g in got) // members}/{len(after)}"
        ),
        "out_of_order_receivers": sum(not in_order(r.seen) for r in receivers),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--paced-rate", type=float, default=PACED_RATE)
    args = parser.parse_args()
    # The pub/sub layer logs a traceback for every failed reconnect; the
    # restart run counts those failures instead.
    logging.getLogger("channels_redis").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "redis.log").start()
        try:
            for kind in LAYERS:
                print(kind, f"({args.members} members on 2 layer instances)")
                flood = await steady(kind, server.url, args.members, args.messages, None)
                print("  flood:", flood)
                paced = await steady(
                    kind, server.url, args.members, PACED_MESSAGES, args.paced_rate
                )
                print(f"  paced at {args.paced_rate:g}/s:", paced)
                print("  restart:", await restart(kind, server, args.members))
        finally:
            server.stop()


if __name__ == "__main__":
    asyncio.run(main())
