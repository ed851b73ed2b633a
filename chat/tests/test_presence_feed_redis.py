"""Presence diffs shared through Redis: registries on one Redis stand in for processes.

The registry notes a large room's joins and leaves with the claims and
releases themselves; the feeds of every process send what was noted, one
diff per room and interval between them. What any feed does is in
test_presence_feed_contract.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from chat.presence.redis import RedisPresence
from chat.protocol import presence_diff_frame

pytestmark = pytest.mark.redis

THRESHOLD = 2
INTERVAL = 0.3
DEADLINE = 10.0


@pytest.fixture
def make_process(make_presence) -> Callable[[], RedisPresence]:
    """A registry, with its feed, of one more process on the test's Redis."""
    return lambda: make_presence(coalesce_above=THRESHOLD, diff_interval=INTERVAL)


def diff_tasks() -> list[asyncio.Task]:
    """The feeds' senders still running."""
    tasks = asyncio.all_tasks()
    return [task for task in tasks if task.get_name().startswith("chat-presence-diff-")]


async def test_the_events_of_two_processes_go_out_in_one_diff(make_process, open_room):
    one, two, room = make_process(), make_process(), await open_room("big")
    await room.join(one, "A")
    await room.join(two, "B")
    assert [(await room.next())["event"] for _ in range(2)] == ["join", "join"]
    await room.join(one, "C")
    await room.join(two, "D")
    await room.leave(two, "C")  # a leave through another process than the join
    diff = await room.next()
    # C's latest event is its leave; the count is the room's in Redis.
    assert diff == presence_diff_frame(joins=["D"], leaves=["C"], count=3)
    await room.assert_silent(3 * INTERVAL)
    assert diff_tasks() == [], "both senders stop once nothing is pending"


async def test_a_busy_room_hears_at_most_one_diff_per_interval(make_process, open_room):
    processes, room = [make_process(), make_process(), make_process()], await open_room("big")
    for name in ("X", "Y"):
        await room.join(processes[0], name)
        assert (await room.next())["event"] == "join"
    names = [f"N{index}" for index in range(40)]
    for index, name in enumerate(names):
        # Three processes, a join every 25 ms: about 1 s of joins in all.
        await room.join(processes[index % 3], name)
        await asyncio.sleep(0.025)
    deadline = time.monotonic() + DEADLINE

    def heard() -> list[str]:
        return [name for frame in room.frames[2:] for name in frame["joins"]]

    while len(heard()) < len(names):
        await room.next(timeout=deadline - time.monotonic())
    assert sorted(heard()) == sorted(names), "every join once, none lost"
    diffs, times = room.frames[2:], room.times[2:]
    assert diffs[-1]["count"] == len(names) + 2
    # Redis lets a diff out at most once per interval. The diffs' arrival
    # here may bunch by a loaded event loop's delays: half an interval's slack.
    span = times[-1] - times[0]
    assert len(diffs) <= span / INTERVAL + 1.5, (len(diffs), span)
    assert len(diffs) >= 2, "the joins took longer than one interval"


async def test_another_process_keeps_a_pending_diff_coalescing(make_process, open_room):
    """The diff pending in Redis, not in the process that noted it, makes a small room coalesce."""
    one, two, room = make_process(), make_process(), await open_room("big")
    for name in ("A", "B"):
        await room.join(one, name)
        assert (await room.next())["event"] == "join"
    await room.join(one, "C")
    # Count 2 is small, but the diff with C's join must not be overtaken.
    await room.leave(two, "B")
    assert await room.next() == presence_diff_frame(joins=["C"], leaves=["B"], count=2)
    await room.leave(two, "A")
    assert (await room.next())["event"] == "leave", "nothing pending any more"
