"""The in-process channel layer's own bookkeeping: what it counts, and that it keeps nothing.

Its behaviour as a channel layer is the contract both layers share
(test_layer_contract.py); this is what a long-running process would suffer
from if it went wrong: a leak of queues, waiters or groups.
"""

from __future__ import annotations

from chat.layers.memory import ChatChannelLayer


async def test_every_event_a_full_member_misses_is_counted():
    layer = ChatChannelLayer(capacity=1)
    slow, fast = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("room", slow)
    await layer.group_add("room", fast)
    for n in range(3):
        await layer.group_send("room", {"type": "t", "n": n})
        assert (await layer.receive(fast))["n"] == n
    assert layer.dropped == 2


async def test_flush_forgets_everything():
    layer = ChatChannelLayer()
    queued, waiting = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("room", queued)
    await layer.send(queued, {"type": "t"})
    pending = layer.receiver(waiting)()
    await layer.flush()
    assert pending.cancelled()
    await layer.group_send("room", {"type": "t"})
    assert (layer._queues, layer._waiters, layer._groups) == ({}, {}, {})


async def test_group_discard_of_the_last_member_forgets_the_group():
    layer = ChatChannelLayer()
    channel = await layer.new_channel()
    await layer.group_add("room", channel)
    await layer.group_discard("room", channel)
    assert layer._groups == {} and not layer.has_group("room")


async def test_a_closed_reader_leaves_nothing_of_its_channel_behind():
    """A consumer that ends with events still queued must not leave them in the layer."""
    layer = ChatChannelLayer()
    queued, waiting = await layer.new_channel(), await layer.new_channel()
    for n in range(3):
        await layer.send(queued, {"type": "t", "n": n})
    queued_reader, waiting_reader = layer.receiver(queued), layer.receiver(waiting)
    assert queued_reader()["n"] == 0
    waiting_reader()
    queued_reader.close()
    waiting_reader.close()
    assert (layer._queues, layer._waiters) == ({}, {})
