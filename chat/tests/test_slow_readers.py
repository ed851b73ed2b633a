"""Slow readers on a real uvicorn process (the README's production command).

A member that stops reading its socket is closed with 4029 while the others
miss nothing; one on a slow link keeps up while the room is quieter than
its link and is closed with 4029, after a gapless run of messages, once the
room outpaces it. bench/slow_readers.py measures what it costs the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import connect as ws_connect

from chat.testing import servers
from chat.testing.slow_client import SlowClient, joined_member
from chat.testing.wsclient import recv_type, send

pytestmark = pytest.mark.server

ROOM = "slow"
# Big messages fill a stalled client's buffers in few messages; the text
# itself is under the 2,000-character limit.
BIG = "x" * 1900
BATCH = 100
# The channel capacity is 1,000 events (chatsite/settings.py); the buffers of
# the slow client's socket hold about a hundred more of these. Far more than
# both, so a server that never closes the member fails instead of hanging.
MOST_MESSAGES = 6000
# A loaded 2-core machine: generous.
DEADLINE = 60.0


class Listener:
    """A member that reads everything, in a task of its own."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.frames: list[dict] = []
        self.task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for text in self.ws:
            self.frames.append(json.loads(text))

    def offsets(self) -> list[int]:
        return [frame["offset"] for frame in self.frames if frame["type"] == "message"]

    def heard_leave(self, name: str) -> bool:
        return any(
            frame["type"] == "presence" and frame["event"] == "leave" and frame["name"] == name
            for frame in self.frames
        )

    async def until(self, condition, what: str) -> None:
        deadline = time.monotonic() + DEADLINE
        while not condition():
            assert self.task.done() is False, f"listener ended: {self.task}"
            assert time.monotonic() < deadline, f"not within {DEADLINE} s: {what}"
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def listening(url: str, name: str) -> AsyncIterator[Listener]:
    async with ws_connect(url, max_size=None) as ws:
        await send(ws, {"type": "join", "name": name})
        await recv_type(ws, "joined")
        listener = Listener(ws)
        try:
            yield listener
        finally:
            listener.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener.task


async def slow_member(url: str, name: str) -> tuple[SlowClient, dict]:
    """A member that has joined; its `joined` frame. It reads nothing more until told."""
    return await joined_member(url, name, timeout=DEADLINE)


async def flood_until_left(sender, name: str, readers: list[Listener], *, sent: int) -> int:
    """Send big messages in batches until the readers hear `name` leave; how many in all.

    After each batch every reader must have every message so far.
    """
    while not readers[0].heard_leave(name):
        assert sent < MOST_MESSAGES, f"{name} was never let go"
        for _ in range(BATCH):
            await send(sender, {"message": BIG})
        sent += BATCH
        for reader in readers:
            await reader.until(lambda r=reader, n=sent: len(r.offsets()) == n, "delivery")
    return sent


def gapless(offsets: list[int], *, after: int) -> bool:
    return offsets == list(range(after + 1, after + 1 + len(offsets)))


def room_url(server: servers.ServerProcess) -> str:
    return f"{server.ws_url}/websocket/ws_chat/{ROOM}"


@pytest.fixture
def uvicorn(start_server, server_database):
    servers.chat_settings(server_database, rate_limit_per_second=0)
    return start_server("uvicorn")


@pytest.fixture(params=["in-process", pytest.param("redis", marks=pytest.mark.redis)])
def two_urls(request, start_server, server_database) -> list[str]:
    """The room on one uvicorn process (twice), or on two sharing a test-started Redis."""
    servers.chat_settings(server_database, rate_limit_per_second=0)
    if request.param == "in-process":
        return [room_url(start_server("uvicorn"))] * 2
    redis_url = request.getfixturevalue("redis_server").url
    pair = [start_server("uvicorn", wait=False, REDIS_URL=redis_url) for _ in range(2)]
    for server in pair:
        server.wait_ready()
    return [room_url(server) for server in pair]


async def test_a_member_that_stops_reading_is_closed_with_4029_and_nobody_misses_anything(
    two_urls,
):
    # The stalled member and Hyoga on one process, Shun and the sender on the other.
    here, there = two_urls
    async with listening(there, "Shun") as shun, listening(here, "Hyoga") as hyoga:
        stalled, joined = await slow_member(here, "Stalled")
        async with ws_connect(there) as seiya:
            await send(seiya, {"type": "join", "name": "Seiya"})
            await recv_type(seiya, "joined")
            # Both readers keep up, whatever the stalled one does.
            sent = await flood_until_left(seiya, "Stalled", [shun, hyoga], sent=0)
        # The room heard the leave while the stalled client still read nothing:
        # the server let it go without waiting for its socket.
        for listener in (shun, hyoga):
            assert gapless(listener.offsets(), after=joined["offset"]), "a reader missed some"
        # When it reads again: a run of messages without a gap from its join,
        # far fewer than were sent, then the close that says it missed some.
        assert await stalled.read_until_closed(DEADLINE) == 4029
        offsets = [frame["offset"] for frame in stalled.messages()]
        assert gapless(offsets, after=joined["offset"])
        assert 0 < len(offsets) < sent
        # The name was freed at once.
        async with ws_connect(there) as again:
            await send(again, {"type": "join", "name": "Stalled"})
            await recv_type(again, "joined")


async def test_a_member_on_a_slow_link_keeps_up_until_the_room_outpaces_it(uvicorn):
    url = room_url(uvicorn)
    link = 16_000  # bytes a second
    async with listening(url, "Shun") as shun:
        slow, joined = await slow_member(url, "Slow")
        async with ws_connect(url) as seiya:
            await send(seiya, {"type": "join", "name": "Seiya"})
            await recv_type(seiya, "joined")
            # Quieter than the link: 20 messages a second of about 240 bytes.
            reading = asyncio.ensure_future(slow.read_for(DEADLINE, bytes_per_second=link))
            for index in range(60):
                await send(seiya, {"message": f"quiet {index} " + "q" * 180})
                await asyncio.sleep(0.05)
            await shun.until(lambda: len(shun.offsets()) == 60, "Shun hears the quiet part")
            deadline = time.monotonic() + DEADLINE
            while len(slow.messages()) < 60:
                assert time.monotonic() < deadline, "the slow link fell behind a quiet room"
                await asyncio.sleep(0.05)
            assert slow.close_code is None
            # Louder than the link: about 200 kB a second until it is let go.
            sent = await flood_until_left(seiya, "Slow", [shun], sent=60)
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading
        assert await slow.read_until_closed(DEADLINE) == 4029
        offsets = [frame["offset"] for frame in slow.messages()]
        assert gapless(offsets, after=joined["offset"]) and 60 <= len(offsets) < sent
        assert gapless(shun.offsets(), after=joined["offset"])
