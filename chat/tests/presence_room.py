"""A room as its members hear their joins and leaves, announced the way the consumer does."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from chat.layers.memory import ChatChannelLayer
from chat.presence.announce import announce
from chat.presence.base import Claim, Presence, Release
from chat.rooms import group_name

# How long a frame that must arrive may take.
DEADLINE = 10.0


class Room:
    """One room: joins and leaves go through a registry and its `feed` by
    chat.presence.announce, and one member's channel hears the frames.

    The frames travel on an in-process channel layer whatever the registry:
    the feed's contract is what it publishes, not how the layer carries it.
    A listener task takes each frame as it arrives, so `times` says when it
    was sent (a test that reads late still sees the spacing of the diffs).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.frames: list[dict[str, Any]] = []
        self.times: list[float] = []
        self._layer = ChatChannelLayer()
        self._heard: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._listener: asyncio.Task[None] | None = None

    async def open(self) -> Room:
        channel = await self._layer.new_channel()
        await self._layer.group_add(group_name(self.name), channel)
        self._listener = asyncio.get_running_loop().create_task(self._listen(channel))
        return self

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)

    async def _listen(self, channel: str) -> None:
        while True:
            event = await self._layer.receive(channel)
            frame = orjson.loads(event["text"])
            self.frames.append(frame)
            self.times.append(time.monotonic())
            self._heard.put_nowait(frame)

    async def join(self, registry: Presence, name: str) -> None:
        """`name` claims its place through `registry`, and the room is told."""
        claim = await registry.claim(room=self.name, name=name, member=name)
        assert claim.won, f"{name} is taken"
        await self._announce(registry, "join", name, claim)

    async def leave(self, registry: Presence, name: str) -> None:
        released = await registry.release(room=self.name, name=name, member=name)
        assert released is not None, f"{name} was not in the room"
        await self._announce(registry, "leave", name, released)

    async def _announce(
        self, registry: Presence, event: str, name: str, outcome: Claim | Release
    ) -> None:
        await announce(
            feed=registry.feed,
            layer=self._layer,
            room=self.name,
            event=event,
            name=name,
            outcome=outcome,
        )

    async def next(self, timeout: float = DEADLINE) -> dict[str, Any]:
        """The next frame heard (TimeoutError if none comes within `timeout`)."""
        return await asyncio.wait_for(self._heard.get(), timeout)

    async def assert_silent(self, timeout: float) -> None:
        """Listen for `timeout` seconds: no frame may arrive."""
        try:
            frame = await self.next(timeout)
        except TimeoutError:
            return
        raise AssertionError(f"{self.name} heard {frame}")
