"""ChatRedisChannelLayer against a real redis-server; two instances stand in for two processes.

What it shares with the in-process layer is tested in test_layer_contract.py;
this is what only a layer across processes does: delivery between them,
batched publishes, subscriptions, outages and a frozen Redis.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
import redis.asyncio

from chat.events import UNAVAILABLE as UNAVAILABLE_EVENT
from chat.events import message_event
from chat.layers import redis as layers_redis
from chat.layers.redis import ChatRedisChannelLayer
from chat.redis.errors import REDIS_ERRORS
from chat.testing.redis_server import count_writes
from chat.tests.layer_reads import DEADLINE, assert_silent, receive

pytestmark = pytest.mark.redis

MESSAGES = 200
GROUP = "chat.lobby"


@pytest.fixture
async def make_layer(redis_server) -> AsyncIterator[Callable[..., ChatRedisChannelLayer]]:
    """Layers on the test's Redis; each flushed and closed after the test."""
    made: list[ChatRedisChannelLayer] = []

    def make(**options: Any) -> ChatRedisChannelLayer:
        options.setdefault("capacity", 1000)
        layer = ChatRedisChannelLayer(url=redis_server.url, **options)
        made.append(layer)
        return layer

    yield make
    for layer in made:
        # Redis may be down at the end of an outage test: flushing is local then.
        try:
            await layer.flush()
        except REDIS_ERRORS:
            pass
        await layer.close()


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll `check` until it holds, failing after DEADLINE."""
    deadline = time.monotonic() + DEADLINE
    while not await check():
        assert time.monotonic() < deadline, f"not within {DEADLINE} s: {what}"
        await asyncio.sleep(0.05)


async def reach_redis(*layers: ChatRedisChannelLayer) -> bool:
    """Whether every layer's health probe makes the round trip through Redis."""
    try:
        for layer in layers:
            await asyncio.wait_for(layer.roundtrip(), DEADLINE)
    except REDIS_ERRORS:
        return False
    return True


async def subscribers(url: str, group: str) -> int:
    client = redis.asyncio.Redis.from_url(url, socket_timeout=2)
    try:
        [(_, count)] = await client.pubsub_numsub(f"chat:layer:group:{group}")
        return count
    finally:
        await client.aclose()


async def test_send_to_another_process_channel(make_layer):
    one, two = make_layer(), make_layer()
    there = await two.new_channel()
    await two.roundtrip()  # two's subscriber is up: what one publishes now reaches it
    for n in range(MESSAGES):
        await one.send(there, {"type": "t", "n": n})
    assert [(await receive(two, there))["n"] for _ in range(MESSAGES)] == list(range(MESSAGES))
    with pytest.raises(ValueError):
        await one.receive(there)


async def test_group_send_reaches_members_of_both_processes_once_in_order(make_layer):
    one, two = make_layer(), make_layer()
    a1, a2 = await one.new_channel(), await one.new_channel()
    b1 = await two.new_channel()
    for layer, channel in ((one, a1), (one, a2), (two, b1)):
        await layer.group_add(GROUP, channel)
    for n in range(MESSAGES):
        await one.group_send(GROUP, {"type": "t", "from": "one", "n": n})
        await two.group_send(GROUP, {"type": "t", "from": "two", "n": n})
    for layer, channel in ((one, a1), (one, a2), (two, b1)):
        heard: dict[str, list[int]] = {"one": [], "two": []}
        for _ in range(2 * MESSAGES):
            message = await receive(layer, channel)
            heard[message["from"]].append(message["n"])
        assert heard == {"one": list(range(MESSAGES)), "two": list(range(MESSAGES))}, channel
        # Exactly once: the publisher's own copy from Redis is not delivered again.
        await assert_silent(layer, channel)


async def test_the_publishes_of_one_turn_go_out_in_one_write(make_layer, monkeypatch):
    one, two = make_layer(), make_layer()
    there = await two.new_channel()
    await two.group_add(GROUP, there)
    await one.roundtrip()
    writes = count_writes(monkeypatch, b"PUBLISH")
    # Nothing between these suspends: one turn of the event loop.
    for n in range(20):
        await one.group_send(GROUP, {"type": "t", "n": n})
    assert [(await receive(two, there))["n"] for _ in range(20)] == list(range(20))
    # (Other commands, a heartbeat's PING say, count no PUBLISH.)
    assert [count for count in writes if count] == [20]


async def test_the_last_member_leaving_unsubscribes_the_process(make_layer, redis_server):
    one, two = make_layer(), make_layer()
    a1, a2 = await one.new_channel(), await one.new_channel()
    await one.group_add(GROUP, a1)
    await one.group_add(GROUP, a2)
    assert await subscribers(redis_server.url, GROUP) == 1
    await one.group_discard(GROUP, a1)
    assert await subscribers(redis_server.url, GROUP) == 1
    await one.group_discard(GROUP, a2)

    async def unsubscribed() -> bool:
        return await subscribers(redis_server.url, GROUP) == 0

    await eventually(unsubscribed, "the process unsubscribed from the group")
    await two.group_send(GROUP, {"type": "t"})
    await assert_silent(one, a1)
    # A new first member subscribes again.
    await one.group_add(GROUP, a1)
    await two.group_send(GROUP, {"type": "t", "n": 2})
    assert (await receive(one, a1))["n"] == 2


async def test_bytes_are_refused_before_anything_is_delivered(make_layer):
    layer = make_layer()
    channel = await layer.new_channel()
    await layer.group_add(GROUP, channel)
    with pytest.raises(TypeError):
        await layer.group_send(GROUP, {"type": "t", "payload": b"raw"})
    await assert_silent(layer, channel)


async def test_membership_is_local(make_layer):
    one, two = make_layer(), make_layer()
    there = await two.new_channel()
    with pytest.raises(ValueError):
        await one.group_add(GROUP, there)
    with pytest.raises(ValueError):
        one.receiver(there)
    with pytest.raises(ValueError):
        await one.receive(there)
    # A dead process's member is discarded without complaint (chat.presence.expiry).
    await one.group_discard(GROUP, there)


async def test_an_outage_is_told_to_local_channels_and_the_layer_recovers(make_layer, redis_server):
    one, two = make_layer(), make_layer()
    member, waiting = await one.new_channel(), await one.new_channel()
    other = await two.new_channel()
    await one.group_add(GROUP, member)
    await two.group_add(GROUP, other)
    receiving = asyncio.ensure_future(one.receive(waiting))
    await one.roundtrip()

    redis_server.stop()
    assert await receive(one, member) == {"type": UNAVAILABLE_EVENT}
    assert await asyncio.wait_for(receiving, DEADLINE) == {"type": UNAVAILABLE_EVENT}
    assert await receive(two, other) == {"type": UNAVAILABLE_EVENT}
    with pytest.raises(REDIS_ERRORS):
        await one.group_send(GROUP, {"type": "t"})
    with pytest.raises(REDIS_ERRORS):
        await asyncio.wait_for(one.roundtrip(), DEADLINE)
    # The events were told once per outage, not once per reconnect attempt.
    await assert_silent(one, member)
    # A connection opening now would hear nothing from other processes.
    with pytest.raises(REDIS_ERRORS):
        await one.new_channel()
    # As the consumers do on layer.unavailable.
    await one.group_discard(GROUP, member)
    await two.group_discard(GROUP, other)

    redis_server.start()

    await eventually(lambda: reach_redis(one, two), "both layers reach Redis again")
    await one.group_add(GROUP, member)
    await two.group_add(GROUP, other)
    await one.group_send(GROUP, {"type": "t", "n": 1})
    assert await receive(two, other) == {"type": "t", "n": 1}
    await two.group_send(GROUP, {"type": "t", "n": 2})
    assert [(await receive(one, member))["n"] for _ in range(2)] == [1, 2]
    assert (await receive(two, other))["n"] == 2
    await one.send(other, {"type": "t", "n": 3})
    assert await receive(two, other) == {"type": "t", "n": 3}


async def test_groups_are_resubscribed_after_a_reconnect(make_layer, redis_server):
    one, two = make_layer(), make_layer()
    member = await one.new_channel()
    await one.group_add(GROUP, member)
    client = redis.asyncio.Redis.from_url(redis_server.url, socket_timeout=2)
    try:
        # Cut only the subscriber's connection: Redis itself stays up.
        killed = await client.client_kill_filter(_type="pubsub")
        assert killed == 1
    finally:
        await client.aclose()
    assert await receive(one, member) == {"type": UNAVAILABLE_EVENT}

    async def resubscribed() -> bool:
        return await subscribers(redis_server.url, GROUP) == 1

    await eventually(resubscribed, "the group's subscription is back")
    await two.group_send(GROUP, {"type": "t", "n": 1})
    assert await receive(one, member) == {"type": "t", "n": 1}


async def test_a_silent_redis_is_found_by_the_heartbeat(make_layer, redis_server, monkeypatch):
    monkeypatch.setattr(layers_redis, "HEARTBEAT_SECONDS", 0.2)
    monkeypatch.setattr(layers_redis, "SOCKET_TIMEOUT_SECONDS", 0.5)
    layer = make_layer()
    member = await layer.new_channel()
    await layer.group_add(GROUP, member)
    await layer.roundtrip()
    # Frozen, Redis keeps its connections open and answers nothing: nothing
    # is published meanwhile, so only the subscriber's heartbeat can tell.
    redis_server.pause()
    try:
        assert await receive(layer, member) == {"type": UNAVAILABLE_EVENT}
        with pytest.raises(REDIS_ERRORS):
            await layer.group_send(GROUP, {"type": "t"})
    finally:
        redis_server.resume()
    await layer.group_discard(GROUP, member)

    await eventually(lambda: reach_redis(layer), "the layer reaches Redis again")
    await layer.group_add(GROUP, member)
    await layer.group_send(GROUP, {"type": "t", "n": 1})
    assert await receive(layer, member) == {"type": "t", "n": 1}


async def test_a_silent_redis_fails_the_publisher(make_layer, redis_server, monkeypatch):
    monkeypatch.setattr(layers_redis, "HEARTBEAT_SECONDS", 60.0)
    monkeypatch.setattr(layers_redis, "SOCKET_TIMEOUT_SECONDS", 0.5)
    one = make_layer()
    member = await one.new_channel()
    await one.group_add(GROUP, member)
    # The publishing connection is open before Redis freezes.
    await one.group_send(GROUP, {"type": "t", "n": 0})
    assert await receive(one, member) == {"type": "t", "n": 0}
    redis_server.pause()
    try:
        # Written while Redis is frozen: its reply never comes, so the
        # publisher's deadline (not the heartbeat, a minute away) tells the
        # members that the event may not have reached the other processes.
        await one.group_send(GROUP, {"type": "t", "n": 1})
        assert await receive(one, member) == {"type": "t", "n": 1}
        assert await receive(one, member) == {"type": UNAVAILABLE_EVENT}
    finally:
        redis_server.resume()


async def test_roundtrip_fails_fast_without_redis(redis_server):
    layer = ChatRedisChannelLayer(url=redis_server.url)
    redis_server.stop()
    try:
        with pytest.raises(REDIS_ERRORS):
            await asyncio.wait_for(layer.roundtrip(), DEADLINE)
    finally:
        await layer.close()


# Numbered messages across processes (the "history" extension on Redis).


def numbered(n: int, sender: str) -> dict[str, Any]:
    frame = {"type": "message", "room": "lobby", "name": sender, "message": str(n), "id": str(n)}
    return message_event(frame, sender=sender, ack=None)


async def test_every_process_hears_the_room_in_one_offset_order_without_gaps(make_layer):
    """Senders on two processes at once: both processes' members hear 1..N in order."""
    one, two = make_layer(), make_layer()
    members = []
    for layer in (one, two):
        channel = await layer.new_channel()
        await layer.group_add(GROUP, channel)
        members.append((layer, channel))

    async def send_all(layer: ChatRedisChannelLayer, sender: str) -> None:
        for n in range(MESSAGES):
            await layer.group_send_numbered(GROUP, numbered(n, sender), keep=100, seconds=120)
            if n % 20 == 0:
                await asyncio.sleep(0)  # let the other process's sender interleave

    await asyncio.gather(send_all(one, "one"), send_all(two, "two"))
    heard = []
    for layer, channel in members:
        events = [await receive(layer, channel) for _ in range(2 * MESSAGES)]
        assert [event["offset"] for event in events] == list(range(1, 2 * MESSAGES + 1))
        # Each sender's messages in the order it sent them.
        for sender in ("one", "two"):
            sent = [orjson.loads(e["text"])["message"] for e in events if e["sender"] == sender]
            assert sent == [str(n) for n in range(MESSAGES)]
        heard.append([event["text"] for event in events])
        await assert_silent(layer, channel)
    assert heard[0] == heard[1]
    # Any process reads the same window.
    history = await two.group_history(GROUP, after=2 * MESSAGES - 100, keep=100, seconds=120)
    assert list(history.texts) == heard[0][-100:]


async def test_an_idle_rooms_window_expires_from_redis(make_layer, redis_server):
    layer = make_layer()
    await layer.group_send_numbered(GROUP, numbered(1, "a"), keep=100, seconds=0.5)
    await layer.group_position(GROUP)  # the script has run: its reply came after it
    client = redis.asyncio.Redis.from_url(redis_server.url, socket_timeout=2)
    stream = f"chat:layer:stream:{GROUP}"
    try:
        assert await client.exists(stream) == 1
        assert 0 < await client.pttl(stream) <= 500
        await eventually(lambda: _gone(client, stream), "the stream expired")
        # The position (epoch and offset) is kept, for a day, so the room counts on.
        assert 0 < await client.pttl(f"chat:layer:window:{GROUP}") <= layers_redis.POSITION_TTL_MS
    finally:
        await client.aclose()


async def _gone(client: redis.asyncio.Redis, key: str) -> bool:
    return await client.exists(key) == 0


async def test_a_redis_that_lost_its_data_starts_a_new_epoch(make_layer, redis_server):
    layer = make_layer()
    await layer.group_send_numbered(GROUP, numbered(1, "a"), keep=100, seconds=120)
    before = await layer.group_position(GROUP)
    assert before.top == 1
    client = redis.asyncio.Redis.from_url(redis_server.url, socket_timeout=2)
    try:
        await client.flushall()
    finally:
        await client.aclose()
    after = await layer.group_position(GROUP)
    assert after.epoch != before.epoch and after.top == 0
    # A token of the old epoch recovers nothing (the consumer compares epochs).
    assert (await layer.group_history(GROUP, after=0, keep=100, seconds=120)).texts == ()


async def test_each_message_carries_its_runs_epoch_and_a_lost_window_starts_a_new_run(
    make_layer, redis_server
):
    """A room's window key can go while members stay (a day without a message,
    a flush): their next messages are of a new run, numbered from 1 again, and
    the event says so, or the members would drop them as heard already."""
    layer = make_layer()
    member = await layer.new_channel()
    await layer.group_add(GROUP, member)
    first = await layer.group_position(GROUP)
    await layer.group_send_numbered(GROUP, numbered(1, "a"), keep=100, seconds=120)
    heard = await receive(layer, member)
    assert (heard["offset"], heard["epoch"]) == (1, first.epoch)
    client = redis.asyncio.Redis.from_url(redis_server.url, socket_timeout=2)
    try:
        await client.delete(f"chat:layer:window:{GROUP}")
    finally:
        await client.aclose()
    await layer.group_send_numbered(GROUP, numbered(2, "a"), keep=100, seconds=120)
    heard = await receive(layer, member)
    assert heard["offset"] == 1 and heard["epoch"] != first.epoch
    assert (await layer.group_position(GROUP)).epoch == heard["epoch"]
