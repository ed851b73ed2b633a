"""The in-process channel layer: order, groups, capacity and cancellation."""

from __future__ import annotations

import asyncio
import logging

import pytest
from channels.exceptions import ChannelFull

from chat.layers.memory import ChatChannelLayer


async def test_send_then_receive_in_order():
    layer = ChatChannelLayer(capacity=10)
    channel = await layer.new_channel()
    for n in range(3):
        await layer.send(channel, {"type": "t", "n": n})
    assert [(await layer.receive(channel))["n"] for _ in range(3)] == [0, 1, 2]


async def test_waiting_receiver_gets_the_next_event():
    layer = ChatChannelLayer()
    channel = await layer.new_channel()
    waiting = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)  # let the receiver start waiting
    await layer.send(channel, {"type": "t"})
    assert await asyncio.wait_for(waiting, 1) == {"type": "t"}


async def test_group_send_reaches_members_in_join_order_once():
    layer = ChatChannelLayer()
    a, b, outsider = [await layer.new_channel() for _ in range(3)]
    await layer.group_add("room", a)
    await layer.group_add("room", b)
    await layer.group_add("room", a)
    await layer.group_send("room", {"type": "t", "n": 1})
    assert await layer.receive(a) == {"type": "t", "n": 1}
    assert await layer.receive(b) == {"type": "t", "n": 1}
    await layer.group_discard("room", b)
    await layer.group_send("room", {"type": "t", "n": 2})
    assert (await layer.receive(a))["n"] == 2
    assert layer._queues.get(b) is None
    assert layer._queues.get(outsider) is None


async def test_full_channel_send_raises():
    layer = ChatChannelLayer(capacity=1)
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "t"})
    with pytest.raises(ChannelFull):
        await layer.send(channel, {"type": "t"})


async def test_full_member_misses_group_events_and_it_is_logged_once(caplog):
    layer = ChatChannelLayer(capacity=1)
    slow, fast = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("room", slow)
    await layer.group_add("room", fast)
    with caplog.at_level(logging.WARNING, logger="chat.layers"):
        for n in range(3):
            await layer.group_send("room", {"type": "t", "n": n})
            assert (await layer.receive(fast))["n"] == n
    assert layer.dropped == 2
    assert [record.getMessage().count(slow) for record in caplog.records] == [1]
    assert (await layer.receive(slow))["n"] == 0
    # The slow member is told once that it missed events, after what it did get.
    assert await layer.receive(slow) == {"type": "layer.overflow", "group": "room"}
    # Caught up: it receives again, and a new overflow would be reported anew.
    await layer.group_send("room", {"type": "t", "n": 3})
    assert (await layer.receive(slow))["n"] == 3


async def test_cancelled_receiver_keeps_an_event_handed_to_it():
    layer = ChatChannelLayer()
    channel = await layer.new_channel()
    waiting = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)
    await layer.send(channel, {"type": "t", "n": 1})
    waiting.cancel()  # before the receiver ran again
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await layer.receive(channel) == {"type": "t", "n": 1}


async def test_flush_forgets_everything():
    layer = ChatChannelLayer()
    channel = await layer.new_channel()
    await layer.group_add("room", channel)
    await layer.send(channel, {"type": "t"})
    await layer.flush()
    await layer.group_send("room", {"type": "t"})
    assert layer._queues == {} and layer._groups == {}


async def test_a_reader_returns_a_queued_event_at_once_and_else_a_future():
    layer = ChatChannelLayer()
    channel = await layer.new_channel()
    read = layer.receiver(channel)
    await layer.send(channel, {"type": "t", "n": 0})
    assert read() == {"type": "t", "n": 0}
    pending = read()
    assert isinstance(pending, asyncio.Future) and not pending.done()
    await layer.group_add("room", channel)
    await layer.group_send("room", {"type": "t", "n": 1})
    assert await asyncio.wait_for(pending, 1) == {"type": "t", "n": 1}


async def test_a_closed_reader_leaves_nothing_of_its_channel_behind():
    """A consumer that ends with events still queued must not leave them in the layer."""
    layer = ChatChannelLayer()
    queued, waiting = await layer.new_channel(), await layer.new_channel()
    for n in range(3):
        await layer.send(queued, {"type": "t", "n": n})
    queued_reader, waiting_reader = layer.receiver(queued), layer.receiver(waiting)
    assert queued_reader()["n"] == 0
    pending = waiting_reader()
    queued_reader.close()
    waiting_reader.close()
    assert pending.cancelled()
    assert (layer._queues, layer._waiters) == ({}, {})
