"""The in-process presence backend: the registry and feed of one server process.

Used with the in-process channel layer (chat.layers.memory), when one process
serves everybody: the registry is a dict per room, and the feed coalesces a
large room's joins and leaves into one diff a second with a timer per room.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar

import orjson

from ..names import name_key, skeleton_key
from .base import (
    COALESCE_ABOVE_MEMBERS,
    DIFF_INTERVAL_SECONDS,
    Claim,
    LiveMember,
    Publish,
    Release,
    diff_frame,
)

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Batch:
    publish: Publish
    count: int = 0
    # name -> "join" or "leave", in the order of each name's latest event.
    events: dict[str, str] = field(default_factory=dict)
    flush: asyncio.Task | None = None


class PresenceFeed:
    """The pending diffs of one process, by room; one flush task per pending room."""

    def __init__(
        self,
        *,
        threshold: int = COALESCE_ABOVE_MEMBERS,
        interval: float = DIFF_INTERVAL_SECONDS,
    ) -> None:
        self.threshold = threshold
        self.interval = interval
        self._batches: dict[str, _Batch] = {}

    async def coalesce(
        self, *, room: str, event: str, name: str, count: int, publish: Publish, noted: bool = False
    ) -> bool:
        """Take the event into the room's next diff, or return False to send it now.

        A room with a pending diff keeps coalescing even once it is small
        again, so that no single event overtakes the diff before it.
        """
        batch = self._batches.get(room)
        if batch is not None and (batch.flush is None or batch.flush.done()):
            # Its flush belonged to an event loop that has since ended (tests).
            del self._batches[room]
            batch = None
        if batch is None:
            if count <= self.threshold:
                return False
            batch = self._batches[room] = _Batch(publish=publish)
            batch.flush = asyncio.get_running_loop().create_task(self._flush_later(room))
        batch.events.pop(name, None)
        batch.events[name] = event
        batch.count = count
        return True

    async def _flush_later(self, room: str) -> None:
        try:
            await asyncio.sleep(self.interval)
            batch = self._batches.pop(room)
            await batch.publish(diff_frame(batch.events, count=batch.count))
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception(
                "could not send the presence diff of room %s", room, extra={"room": room}
            )

    async def aclose(self) -> None:
        """Stop the pending flushes (tests, shutdown); their diffs are not sent."""
        flushes = [batch.flush for batch in self._batches.values() if batch.flush is not None]
        self._batches.clear()
        for flush in flushes:
            flush.cancel()
        await asyncio.gather(*flushes, return_exceptions=True)


class _LocalRoom:
    """One room's names: who holds each, the names in join order, and their JSON.

    Every `joined` frame carries the whole member list, so a reconnect storm
    of N members asks for it N times. The list is kept encoded: a join
    appends its name's JSON to it, one copy of bytes instead of encoding N
    names again; a leave drops the encoding, which the next join rebuilds.
    """

    __slots__ = ("_json", "holders", "joined", "names", "skeletons")

    def __init__(self) -> None:
        self.holders: dict[str, str] = {}  # name key -> member
        self.names: dict[str, str] = {}  # name key -> name
        self.skeletons: dict[str, str] = {}  # skeleton key -> name key
        # name key -> when it joined (seconds since the epoch) and its address.
        self.joined: dict[str, tuple[float, str]] = {}
        # The names as a JSON array, without its closing bracket; None: rebuild.
        self._json: bytearray | None = None

    def taken(self, key: str, skeleton: str) -> bool:
        return key in self.holders or skeleton in self.skeletons

    def holds(self, key: str, name: str, member: str) -> bool:
        """Whether `member` holds exactly `name` (under `key`)."""
        return self.holders.get(key) == member and self.names[key] == name

    def hand_over(self, key: str, member: str, address: str) -> None:
        """Give the entry to `member`, keeping the name's place and join time."""
        self.holders[key] = member
        self.joined[key] = (self.joined[key][0], address)

    def add(self, key: str, skeleton: str, name: str, member: str, address: str) -> None:
        self.holders[key] = member
        self.names[key] = name
        self.skeletons[skeleton] = key
        self.joined[key] = (time.time(), address)
        if self._json is not None:
            self._json += (b"," if len(self.names) > 1 else b"") + orjson.dumps(name)

    def remove(self, key: str) -> None:
        # The skeleton of the name as it was claimed: a release may spell it
        # in another case, whose skeleton can differ ("SEIYA", "Seiya").
        del self.skeletons[skeleton_key(self.names[key])]
        del self.holders[key], self.names[key], self.joined[key]
        self._json = None

    def members_json(self) -> bytes:
        """The names in join order, as a JSON array."""
        if self._json is None:
            self._json = bytearray(orjson.dumps(list(self.names.values()))[:-1])
        return bytes(self._json + b"]")


class LocalPresence:
    """The registry of one process, for the in-process channel layer."""

    extensions: ClassVar[list[str]] = []

    def __init__(
        self,
        *,
        coalesce_above: int = COALESCE_ABOVE_MEMBERS,
        diff_interval: float = DIFF_INTERVAL_SECONDS,
    ) -> None:
        # Named as RedisPresence's options, so that one CHAT_PRESENCE OPTIONS
        # (or one contract test) suits either backend.
        self._rooms: dict[str, _LocalRoom] = {}
        # The serial of the latest join or leave, of any room (Release.serial).
        self._serial = 0
        self.feed = PresenceFeed(threshold=coalesce_above, interval=diff_interval)

    async def claim(
        self,
        *,
        room: str,
        name: str,
        member: str,
        address: str = "",
        limit: int = 0,
        takeover: str | None = None,
    ) -> Claim:
        entry = self._rooms.get(room)
        if entry is None:
            entry = self._rooms[room] = _LocalRoom()
        key, skeleton = name_key(name), skeleton_key(name)
        if takeover is not None and entry.holds(key, name, takeover):
            entry.hand_over(key, member, address)
            return Claim(
                members_json=entry.members_json(),
                count=len(entry.names),
                replaced=takeover,
                serial=self._serial,
            )
        if entry.taken(key, skeleton):
            return Claim(members_json=None)
        if limit and len(entry.holders) >= limit:
            return Claim(members_json=None, full=True)
        entry.add(key, skeleton, name, member, address)
        self._serial += 1
        return Claim(members_json=entry.members_json(), count=len(entry.names), serial=self._serial)

    async def release(self, *, room: str, name: str, member: str) -> Release | None:
        entry = self._rooms.get(room)
        key = name_key(name)
        if entry is None or entry.holders.get(key) != member:
            return None
        entry.remove(key)
        if not entry.holders:
            del self._rooms[room]
        self._serial += 1
        return Release(count=len(entry.holders), serial=self._serial)

    async def members(self, *, room: str) -> list[str]:
        entry = self._rooms.get(room)
        return [] if entry is None else list(entry.names.values())

    async def counts(self) -> dict[str, int]:
        return {room: len(entry.holders) for room, entry in self._rooms.items()}

    async def live_members(self, *, room: str | None = None) -> list[LiveMember]:
        rooms = sorted(self._rooms) if room is None else [room]
        return [
            LiveMember(
                room=slug,
                name=name,
                member=entry.holders[key],
                joined_at=datetime.fromtimestamp(entry.joined[key][0], UTC),
                address=entry.joined[key][1],
            )
            for slug in rooms
            if (entry := self._rooms.get(slug)) is not None
            for key, name in entry.names.items()
        ]

    async def ping(self) -> None:
        """Nothing to reach: the registry is this process's memory."""

    async def aclose(self) -> None:
        """Stop the feed's pending flushes; the registry itself holds nothing to close."""
        await self.feed.aclose()
