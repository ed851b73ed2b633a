"""Presence diffs shared through Redis: registries and feeds on one Redis stand in for processes.

The registry notes a large room's joins and leaves with the claims and
releases themselves; the feeds send what was noted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from chat.presence.redis import SharedPresenceFeed
from chat.tests.test_presence_feed import Published

pytestmark = pytest.mark.redis

THRESHOLD = 2
INTERVAL = 0.3
ROOM = "big"
DEADLINE = 10.0


@pytest.fixture
def make_feed(make_presence) -> Callable[[], SharedPresenceFeed]:
    def make() -> SharedPresenceFeed:
        presence = make_presence(coalesce_above=THRESHOLD, diff_interval=INTERVAL)
        return SharedPresenceFeed(presence, interval=INTERVAL)

    return make


async def joined(feed: SharedPresenceFeed, name: str, room: Published) -> bool:
    """Claim `name` through the feed's registry and hand its join to the feed: coalesced?"""
    claim = await feed.presence.claim(room=ROOM, name=name, member=name)
    assert claim.won
    event = {"room": ROOM, "event": "join", "name": name, "count": claim.count}
    return await feed.coalesce(**event, publish=room, noted=claim.noted)


async def left(feed: SharedPresenceFeed, name: str, room: Published) -> bool:
    released = await feed.presence.release(room=ROOM, name=name, member=name)
    assert released is not None
    event = {"room": ROOM, "event": "leave", "name": name, "count": released.count}
    return await feed.coalesce(**event, publish=room, noted=released.noted)


def diff_tasks() -> list[asyncio.Task]:
    """The feeds' flushers still running."""
    tasks = asyncio.all_tasks()
    return [task for task in tasks if task.get_name().startswith("chat-presence-diff-")]


async def test_the_events_of_two_processes_go_out_in_one_diff(make_feed):
    one, two, room = make_feed(), make_feed(), Published()
    assert not await joined(one, "A", room), "a small room hears each event at once"
    assert not await joined(two, "B", room)
    assert await joined(one, "C", room)
    assert await joined(two, "D", room)
    assert await left(two, "C", room), "a leave through another process than the join"
    diff = await room.next()
    # C's latest event is its leave; the count is the room's in Redis.
    assert diff == {
        "type": "presence", "event": "diff", "joins": ["D"], "leaves": ["C"], "count": 3,
    }  # fmt: skip
    with pytest.raises(TimeoutError):
        await room.next(timeout=3 * INTERVAL)
    assert room.frames == [diff], "one diff from the two processes"
    assert diff_tasks() == [], "both flushers stop once nothing is pending"


async def test_a_busy_room_hears_at_most_one_diff_per_interval(make_feed):
    feeds, room = [make_feed(), make_feed(), make_feed()], Published()
    for name in ("X", "Y"):
        assert not await joined(feeds[0], name, room)
    names = [f"N{index}" for index in range(40)]
    for index, name in enumerate(names):
        # Three processes, a join every 25 ms: about 1 s of joins in all.
        assert await joined(feeds[index % 3], name, room)
        await asyncio.sleep(0.025)
    deadline = time.monotonic() + DEADLINE

    def heard() -> list[str]:
        return [name for frame in room.frames for name in frame["joins"]]

    while len(heard()) < len(names):
        await room.next(timeout=deadline - time.monotonic())
    assert sorted(heard()) == sorted(names), "every join once, none lost"
    assert room.frames[-1]["count"] == len(names) + 2
    # Redis lets a diff out at most once per interval. The diffs' arrival
    # here may bunch by a loaded event loop's delays: half an interval's slack.
    span = room.times[-1] - room.times[0]
    assert len(room.frames) <= span / INTERVAL + 1.5, (len(room.frames), span)
    assert len(room.frames) >= 2, "the joins took longer than one interval"


async def test_a_pending_diff_keeps_coalescing_once_the_room_is_small(make_feed):
    one, two, room = make_feed(), make_feed(), Published()
    for name in ("A", "B"):
        assert not await joined(one, name, room)
    assert await joined(one, "C", room)
    # Count 2 is small, but the diff with C's join must not be overtaken.
    assert await left(two, "B", room)
    assert await room.next() == {
        "type": "presence", "event": "diff", "joins": ["C"], "leaves": ["B"], "count": 2,
    }  # fmt: skip
    assert not await left(two, "A", room), "nothing pending any more"


async def test_names_travel_as_json(make_feed):
    feed, room = make_feed(), Published()
    for name in ("A", "B"):
        await joined(feed, name, room)
    odd = ['Quote "q"', "back\\slash", "comma, too", "+plus", "-minus", "emoji \u200d"]
    for name in odd:
        assert await joined(feed, name, room)
    assert (await room.next())["joins"] == odd
