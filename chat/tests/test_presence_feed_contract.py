"""The presence feed's contract, in-process and on a real redis-server alike.

A feed only makes sense with its registry (the Redis feed sends what the
Redis registry noted with each claim and release), so every test goes
through a registry and its `feed`, announcing as the consumer does
(chat.presence.announce): a small room hears each join and leave at once, a
large one a diff per interval. What only Redis does (several processes
sending one diff) is in test_presence_feed_redis.py.
"""

from __future__ import annotations

import asyncio

import pytest

from chat.presence.base import DIFF_INTERVAL_SECONDS, Presence
from chat.protocol import presence_diff_frame, presence_frame

# A room is large above THRESHOLD members (SPEC: 100), and hears one diff
# per INTERVAL (SPEC: a second): long enough that a loaded machine makes a
# test's few joins within one interval.
THRESHOLD = 2
INTERVAL = 0.3
# Long enough for a diff, had one been pending, to have been sent.
SILENCE = 2 * INTERVAL


@pytest.fixture
def registry(make_registry) -> Presence:
    return make_registry(coalesce_above=THRESHOLD, diff_interval=INTERVAL)


async def fill(room, registry: Presence, names: str) -> None:
    """Join each of `names` (one letter each) while the room is small: each is heard at once."""
    for name in names:
        await room.join(registry, name)
        assert (await room.next())["name"] == name


async def test_a_small_rooms_joins_and_leaves_are_sent_at_once(registry, open_room):
    room = await open_room("small")
    await room.join(registry, "A")
    assert await room.next() == presence_frame(event="join", name="A", count=1)
    # THRESHOLD members is small still: coalescing is for rooms above it.
    await room.join(registry, "B")
    assert await room.next() == presence_frame(event="join", name="B", count=THRESHOLD)
    await room.leave(registry, "A")
    assert await room.next() == presence_frame(event="leave", name="A", count=1)
    await room.assert_silent(SILENCE)


async def test_a_large_rooms_joins_become_one_diff_per_interval(registry, open_room):
    room = await open_room("large")
    await fill(room, registry, "AB")
    for name in "CDE":
        await room.join(registry, name)
    assert await room.next() == presence_diff_frame(joins=["C", "D", "E"], leaves=[], count=5)
    await room.join(registry, "F")
    await room.leave(registry, "A")
    assert await room.next() == presence_diff_frame(joins=["F"], leaves=["A"], count=5)
    # At most one diff per interval (a lower bound: a loaded machine only adds
    # to it), and the interval the registry was given, not the default.
    gap = room.times[-1] - room.times[-2]
    assert 0.8 * INTERVAL <= gap < DIFF_INTERVAL_SECONDS, gap
    await room.assert_silent(SILENCE)


async def test_a_leave_after_a_join_in_one_interval_is_a_leave(registry, open_room):
    """A diff holds each name's latest event, so `joins` and `leaves` never share one."""
    room = await open_room("large")
    await fill(room, registry, "AB")
    await room.join(registry, "C")
    await room.join(registry, "D")
    await room.leave(registry, "C")
    # And a leave then a join again is a join.
    await room.leave(registry, "A")
    await room.join(registry, "A")
    assert await room.next() == presence_diff_frame(joins=["D", "A"], leaves=["C"], count=3)


async def test_a_pending_diff_keeps_coalescing_once_the_room_is_small(registry, open_room):
    room = await open_room("large")
    await fill(room, registry, "AB")
    await room.join(registry, "C")
    # Back at THRESHOLD members, but B's leave must not overtake the diff with C's join.
    await room.leave(registry, "B")
    assert await room.next() == presence_diff_frame(joins=["C"], leaves=["B"], count=2)
    # Nothing pending any more: a small room hears the next leave at once.
    await room.leave(registry, "A")
    assert await room.next() == presence_frame(event="leave", name="A", count=1)


async def test_rooms_are_coalesced_separately(registry, open_room):
    one, two = await open_room("one"), await open_room("two")
    await fill(one, registry, "AB")
    await fill(two, registry, "AB")
    await one.join(registry, "C")
    await two.join(registry, "D")
    assert await one.next() == presence_diff_frame(joins=["C"], leaves=[], count=3)
    assert await two.next() == presence_diff_frame(joins=["D"], leaves=[], count=3)


async def test_names_travel_as_json(registry, open_room):
    room = await open_room("large")
    await fill(room, registry, "AB")
    odd = ['Quote "q"', "back\\slash", "comma, too", "+plus", "-minus", "emoji \u200d", "Olá 👋"]
    for name in odd:
        await room.join(registry, name)
    assert (await room.next())["joins"] == odd


async def test_aclose_stops_a_pending_diff(make_registry):
    """Closing a registry stops its feed's work: no pending diff's task outlives it."""
    registry = make_registry(coalesce_above=0, diff_interval=30.0)
    claim = await registry.claim(room="closing", name="A", member="m1")
    sent: list[dict] = []

    async def publish(frame: dict) -> None:
        sent.append(frame)

    before = asyncio.all_tasks()
    assert await registry.feed.coalesce(
        room="closing",
        event="join",
        name="A",
        count=claim.count,
        publish=publish,
        noted=claim.noted,
    )
    pending = asyncio.all_tasks() - before
    assert pending, "a pending diff has a task that will send it"
    await registry.aclose()
    assert all(task.done() for task in pending), "a diff's task outlived aclose"
    assert sent == []
