"""The channel layer's contract, in-process and on a real redis-server alike.

What the consumer (chat.dispatch, chat.events) relies on from either layer:
order, groups, a full channel's overflow event, flush, and the extensions it
looks up. What only one layer does is tested beside it: test_layers.py
(in-process internals), test_layers_redis.py (processes, outages, batching).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from channels.exceptions import ChannelFull
from channels.layers import BaseChannelLayer

from chat import events
from chat.layers.memory import ChatChannelLayer
from chat.layers.redis import ChatRedisChannelLayer
from chat.tests.layer_reads import DEADLINE, assert_silent, receive

GROUP = "chat.lobby"


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def make_layer(request) -> AsyncIterator[Callable[..., BaseChannelLayer]]:
    """Layers of each kind, made with the given options; flushed and closed after the test."""
    url = request.getfixturevalue("redis_server").url if request.param == "redis" else None
    made: list[BaseChannelLayer] = []

    def make(**options: Any) -> BaseChannelLayer:
        if url is None:
            layer: BaseChannelLayer = ChatChannelLayer(**options)
        else:
            layer = ChatRedisChannelLayer(url, **options)
        made.append(layer)
        return layer

    yield make
    for layer in made:
        await layer.flush()
        await layer.close()


@pytest.fixture
def layer(make_layer) -> BaseChannelLayer:
    return make_layer()


async def test_new_channels_are_distinct_and_valid(layer):
    names = [await layer.new_channel() for _ in range(3)] + [await layer.new_channel("healthz.")]
    assert len(set(names)) == 4
    for name in names:
        assert layer.require_valid_channel_name(name)
    assert names[-1].startswith("healthz.")


async def test_send_then_receive_in_order(layer):
    channel = await layer.new_channel()
    for n in range(3):
        await layer.send(channel, {"type": "t", "n": n})
    assert [(await receive(layer, channel))["n"] for _ in range(3)] == [0, 1, 2]
    await assert_silent(layer, channel)


async def test_a_waiting_receiver_gets_the_next_event(layer):
    channel = await layer.new_channel()
    waiting = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)  # one turn of the loop: the receiver waits, nothing is queued
    assert not waiting.done()
    await layer.send(channel, {"type": "t"})
    assert await asyncio.wait_for(waiting, DEADLINE) == {"type": "t"}


async def test_a_cancelled_receiver_keeps_an_event_handed_to_it(layer):
    channel = await layer.new_channel()
    waiting = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)
    await layer.send(channel, {"type": "t", "n": 1})
    waiting.cancel()  # before the receiver ran again
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await receive(layer, channel) == {"type": "t", "n": 1}


async def test_a_reader_returns_a_queued_event_at_once_and_else_a_future(layer):
    channel = await layer.new_channel()
    read = layer.receiver(channel)
    await layer.send(channel, {"type": "t", "n": 0})
    assert read() == {"type": "t", "n": 0}
    pending = read()
    assert isinstance(pending, asyncio.Future) and not pending.done()
    await layer.group_add(GROUP, channel)
    await layer.group_send(GROUP, {"type": "t", "n": 1})
    assert await asyncio.wait_for(pending, DEADLINE) == {"type": "t", "n": 1}


async def test_a_closed_reader_drops_its_channel_and_cancels_its_future(layer):
    """A consumer that ends with events still queued leaves none for a later reader."""
    queued, waiting = await layer.new_channel(), await layer.new_channel()
    for n in range(3):
        await layer.send(queued, {"type": "t", "n": n})
    queued_reader, waiting_reader = layer.receiver(queued), layer.receiver(waiting)
    assert queued_reader()["n"] == 0
    pending = waiting_reader()
    queued_reader.close()
    waiting_reader.close()
    assert pending.cancelled()
    await assert_silent(layer, queued)


async def test_group_send_reaches_each_member_once_in_order(layer):
    a, b, outsider = [await layer.new_channel() for _ in range(3)]
    await layer.group_add(GROUP, a)
    await layer.group_add(GROUP, b)
    await layer.group_add(GROUP, a)  # a second add of a member changes nothing
    for n in range(3):
        await layer.group_send(GROUP, {"type": "t", "n": n})
    for channel in (a, b):
        assert [(await receive(layer, channel))["n"] for _ in range(3)] == [0, 1, 2]
        await assert_silent(layer, channel)
    await assert_silent(layer, outsider)


async def test_a_discarded_member_hears_the_group_no_more(layer):
    stays, leaves = await layer.new_channel(), await layer.new_channel()
    await layer.group_add(GROUP, stays)
    await layer.group_add(GROUP, leaves)
    await layer.group_discard(GROUP, leaves)
    # Discarding again, or from a group it never joined, is no error.
    await layer.group_discard(GROUP, leaves)
    await layer.group_discard("chat.elsewhere", stays)
    await layer.group_send(GROUP, {"type": "t", "n": 1})
    assert await receive(layer, stays) == {"type": "t", "n": 1}
    await assert_silent(layer, leaves)
    # The last member leaving empties the group; a new first member hears it again.
    await layer.group_discard(GROUP, stays)
    await layer.group_send(GROUP, {"type": "t", "n": 2})
    await assert_silent(layer, stays)
    await layer.group_add(GROUP, leaves)
    await layer.group_send(GROUP, {"type": "t", "n": 3})
    assert await receive(layer, leaves) == {"type": "t", "n": 3}


async def test_a_full_channel_refuses_a_send(make_layer):
    layer = make_layer(capacity=1)
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "t", "n": 0})
    with pytest.raises(ChannelFull):
        await layer.send(channel, {"type": "t", "n": 1})
    assert await receive(layer, channel) == {"type": "t", "n": 0}


async def test_a_full_member_is_told_once_that_it_missed_group_events(make_layer, caplog):
    layer = make_layer(capacity=1)
    slow, fast = await layer.new_channel(), await layer.new_channel()
    await layer.group_add(GROUP, slow)
    await layer.group_add(GROUP, fast)
    with caplog.at_level(logging.WARNING, logger="chat.layers"):
        for n in range(3):
            await layer.group_send(GROUP, {"type": "t", "n": n})
            assert (await receive(layer, fast))["n"] == n
    # Logged once per overflow, naming the channel, not once per missed event.
    full = [record.getMessage() for record in caplog.records if "is full" in record.getMessage()]
    assert len(full) == 1 and slow in full[0], full
    # The slow member gets what it had, then one overflow event past its capacity.
    assert (await receive(layer, slow))["n"] == 0
    assert await receive(layer, slow) == {"type": events.OVERFLOW, "group": GROUP}
    await assert_silent(layer, slow)
    # Caught up: it receives again.
    await layer.group_send(GROUP, {"type": "t", "n": 3})
    assert (await receive(layer, slow))["n"] == 3


async def test_a_reader_with_an_alarm_is_told_at_once_and_its_queue_emptied(make_layer):
    layer = make_layer(capacity=2)
    slow, fast = await layer.new_channel(), await layer.new_channel()
    await layer.group_add(GROUP, slow)
    await layer.group_add(GROUP, fast)
    reader = layer.receiver(slow)
    rung: list[int] = []
    # Told from inside the send that overflowed the queue: a consumer stuck
    # on its socket learns it without reading its queue.
    reader.on_overflow(lambda: rung.append(len(rung)))
    for n in range(4):
        await layer.group_send(GROUP, {"type": "t", "n": n})
        assert (await receive(layer, fast))["n"] == n
        assert rung == ([] if n < 2 else [0]), n
    # What was queued is dropped (its consumer closes instead of sending it);
    # the overflow event is left, and then what came after it.
    assert reader() == {"type": events.OVERFLOW, "group": GROUP}
    assert reader()["n"] == 3
    reader.close()
    # A closed reader's alarm is gone with it.
    await layer.group_add(GROUP, slow)
    for n in range(4):
        await layer.group_send(GROUP, {"type": "t", "n": n})
    assert rung == [0]


async def test_flush_forgets_channels_and_groups(layer):
    member = await layer.new_channel()
    await layer.group_add(GROUP, member)
    await layer.send(member, {"type": "t", "n": 0})
    await layer.flush()
    await layer.group_send(GROUP, {"type": "t", "n": 1})
    await assert_silent(layer, member)


async def test_the_extensions_declared_are_the_ones_implemented(layer):
    """The consumer and the health probe look capabilities up in `extensions`."""
    assert {"groups", "flush", "receiver"} <= set(layer.extensions)
    # The health probe calls `roundtrip` where it is declared (chat.health).
    assert ("roundtrip" in layer.extensions) == hasattr(layer, "roundtrip")
    if "roundtrip" in layer.extensions:
        await asyncio.wait_for(layer.roundtrip(), DEADLINE)


async def test_notify_all_reaches_every_channel_of_this_layer_only(make_layer):
    """chat.moderation.watch tells each process's own connections through it."""
    here, elsewhere = make_layer(), make_layer()
    waiting, queued, grouped = [await here.new_channel() for _ in range(3)]
    other = await elsewhere.new_channel()
    await here.group_add(GROUP, grouped)
    await elsewhere.group_add(GROUP, other)
    await here.send(queued, {"type": "t", "n": 0})
    reader = asyncio.ensure_future(here.receive(waiting))
    await asyncio.sleep(0)  # the reader waits now
    notice = {"type": events.MODERATE, "kicks": []}
    assert here.notify_all(notice) == 3
    assert await asyncio.wait_for(reader, DEADLINE) == notice
    assert [await receive(here, queued) for _ in range(2)] == [{"type": "t", "n": 0}, notice]
    assert await receive(here, grouped) == notice
    await assert_silent(elsewhere, other)


# History: numbered messages and the recovery window (the "history" extension).


def message(n: int, sender: str = "") -> dict[str, Any]:
    frame = {"type": "message", "room": "lobby", "name": "a", "message": f"m{n}", "id": str(n)}
    return events.message_event(frame, sender=sender, ack=None)


async def test_numbered_messages_reach_every_member_sender_included_in_offset_order(layer):
    """The sender hears its own back (to acknowledge it); the text carries the offset."""
    sender, member = await layer.new_channel(), await layer.new_channel()
    for channel in (sender, member):
        await layer.group_add(GROUP, channel)
    for n in range(1, 6):
        await layer.group_send_numbered(GROUP, message(n, sender), keep=100, seconds=120)
    for channel in (sender, member):
        got = [await receive(layer, channel) for _ in range(5)]
        assert [event["offset"] for event in got] == [1, 2, 3, 4, 5]
        assert [orjson.loads(event["text"])["offset"] for event in got] == [1, 2, 3, 4, 5]
        assert {event["sender"] for event in got} == {sender}
        await assert_silent(layer, channel)


async def test_the_window_gives_back_exactly_what_it_holds_after_an_offset(layer):
    start = await layer.group_position(GROUP)
    assert start.top == 0 and start.epoch
    for n in range(1, 6):
        await layer.group_send_numbered(GROUP, message(n), keep=3, seconds=120)
    position = await layer.group_position(GROUP)
    assert (position.epoch, position.top) == (start.epoch, 5)

    async def after(offset: int) -> list[int] | None:
        history = await layer.group_history(GROUP, after=offset, keep=3, seconds=120)
        assert (history.epoch, history.top) == (start.epoch, 5)
        texts = history.texts
        return None if texts is None else [orjson.loads(text)["offset"] for text in texts]

    assert await after(2) == [3, 4, 5]
    assert await after(4) == [5]
    assert await after(5) == []
    # Offsets 1 and 2 left the window (keep=3): a member who last saw 1 missed one.
    assert await after(1) is None
    # Nobody can have seen an offset the room has not reached.
    assert await after(6) is None


async def test_an_idle_window_loses_its_messages_after_its_seconds(layer):
    await layer.group_send_numbered(GROUP, message(1), keep=100, seconds=0.5)
    assert (await layer.group_history(GROUP, after=0, keep=100, seconds=0.5)).texts is not None
    for _ in range(50):  # bounded: 5 s at most
        if (await layer.group_history(GROUP, after=0, keep=100, seconds=0.5)).texts is None:
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the message never left the window")
    # The room keeps counting where it was.
    assert (await layer.group_position(GROUP)).top == 1
