"""Coalesced presence: one diff per interval for large rooms, per-event frames for small ones."""

from __future__ import annotations

import asyncio
import time

import pytest

from chat.presence import get_presence
from chat.presence.memory import PresenceFeed


class Published:
    """A fake room: the frames published (and when), and a way to wait for the next one."""

    def __init__(self) -> None:
        self.frames: list[dict] = []
        self.times: list[float] = []
        self.arrived = asyncio.Event()

    async def __call__(self, frame: dict) -> None:
        self.frames.append(frame)
        self.times.append(time.monotonic())
        self.arrived.set()

    async def next(self, timeout: float = 2.0) -> dict:
        await asyncio.wait_for(self.arrived.wait(), timeout)
        self.arrived.clear()
        return self.frames[-1]


async def test_small_room_events_are_not_coalesced():
    feed, published = PresenceFeed(threshold=3, interval=0.01), Published()
    taken = await feed.coalesce(room="g", event="join", name="A", count=3, publish=published)
    assert taken is False


async def test_large_room_events_become_one_diff():
    feed, published = PresenceFeed(threshold=3, interval=0.05), Published()
    for name, count in [("A", 4), ("B", 5), ("C", 6)]:
        join = {"room": "g", "event": "join", "name": name, "count": count}
        assert await feed.coalesce(**join, publish=published)
    assert await feed.coalesce(room="g", event="leave", name="Z", count=5, publish=published)
    assert await published.next() == {
        "type": "presence",
        "event": "diff",
        "joins": ["A", "B", "C"],
        "leaves": ["Z"],
        "count": 5,
    }
    assert len(published.frames) == 1


async def test_latest_event_of_a_name_wins_and_lists_never_overlap():
    feed, published = PresenceFeed(threshold=0, interval=0.05), Published()
    await feed.coalesce(room="g", event="join", name="A", count=1, publish=published)
    await feed.coalesce(room="g", event="leave", name="A", count=0, publish=published)
    await feed.coalesce(room="g", event="leave", name="B", count=0, publish=published)
    await feed.coalesce(room="g", event="join", name="B", count=1, publish=published)
    frame = await published.next()
    assert (frame["joins"], frame["leaves"], frame["count"]) == (["B"], ["A"], 1)


async def test_a_pending_diff_keeps_coalescing_once_the_room_is_small():
    feed, published = PresenceFeed(threshold=3, interval=0.05), Published()
    assert await feed.coalesce(room="g", event="join", name="A", count=4, publish=published)
    assert await feed.coalesce(room="g", event="leave", name="B", count=3, publish=published)
    assert (await published.next())["leaves"] == ["B"]
    assert not await feed.coalesce(room="g", event="leave", name="C", count=2, publish=published)


async def test_rooms_are_coalesced_separately():
    feed = PresenceFeed(threshold=0, interval=0.05)
    one, two = Published(), Published()
    await feed.coalesce(room="one", event="join", name="A", count=1, publish=one)
    await feed.coalesce(room="two", event="join", name="B", count=1, publish=two)
    assert (await one.next())["joins"] == ["A"]
    assert (await two.next())["joins"] == ["B"]


@pytest.mark.django_db(transaction=True)
async def test_consumer_sends_a_diff_once_the_room_is_large(connect, monkeypatch):
    feed = get_presence().feed
    monkeypatch.setattr(feed, "threshold", 2)
    monkeypatch.setattr(feed, "interval", 0.05)
    a, b, c = await connect(), await connect(), await connect()
    await a.join("A")
    await b.join("B")
    assert (await a.receive_type("presence"))["event"] == "join"
    await c.join("C")
    diff = {"type": "presence", "event": "diff", "joins": ["C"], "leaves": [], "count": 3}
    assert await a.receive_type("presence") == diff
    assert await b.receive_type("presence") == diff
    await c.send({"message": "hi"})
    assert (await a.receive_type("message"))["name"] == "C"
