"""The in-process feed through the consumer: a room that grows large hears diffs.

What every feed does, in-process and on Redis, is in
test_presence_feed_contract.py.
"""

from __future__ import annotations

import pytest

from chat.presence import get_presence


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
