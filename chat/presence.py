"""Who is in which room: the name registry behind `joined`, `presence` and `name_taken`.

Names are unique per room, compared case-insensitively. A member is keyed by
its channel name, which is unique across processes, so releasing a name can
never free somebody else's claim on it.

`LocalPresence` serves one process (the in-process channel layer). With
REDIS_URL set, `chat.presence_redis.RedisPresence` shares the registry
between processes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Protocol

import orjson
from django.conf import settings


def name_key(name: str) -> str:
    """The form in which two names count as the same (case-insensitive)."""
    return name.casefold()


@dataclass(frozen=True, slots=True)
class Claim:
    """The outcome of claiming a name: the room's members after it, or None if taken.

    The members come as a JSON array, in join order, ready to go into the
    `joined` frame as they are: in a reconnect storm of N members the list
    is asked for N times, and chat.presence_redis keeps it encoded in Redis.
    """

    members_json: str | bytes | None
    count: int = 0
    # Whether the registry put the join in the room's next presence diff
    # already, in the claim itself (chat.presence_redis); never in-process.
    noted: bool = False

    @property
    def won(self) -> bool:
        return self.members_json is not None

    @property
    def members(self) -> list[str] | None:
        """The members decoded (tests, tools); the consumer sends `members_json` as it is."""
        return None if self.members_json is None else orjson.loads(self.members_json)


@dataclass(frozen=True, slots=True)
class Release:
    """A freed name: the room's count after, and whether the leave went into its next diff."""

    count: int
    noted: bool = False


class Presence(Protocol):
    async def claim(self, *, room: str, name: str, member: str) -> Claim:
        """Claim `name` in `room` for `member` (a channel name), atomically."""

    async def release(self, *, room: str, name: str, member: str) -> Release | None:
        """Free the name if `member` holds it; None if it does not."""

    async def members(self, *, room: str) -> list[str]:
        """Names in the room, in the order they joined."""

    async def counts(self) -> dict[str, int]:
        """Members per room, for the rooms that have any."""


class _LocalRoom:
    """One room's names: who holds each, the names in join order, and their JSON.

    Every `joined` frame carries the whole member list, so a reconnect storm
    of N members asks for it N times. The list is kept encoded: a join
    appends its name's JSON to it, one copy of bytes instead of encoding N
    names again; a leave drops the encoding, which the next join rebuilds.
    """

    __slots__ = ("_json", "holders", "names")

    def __init__(self) -> None:
        self.holders: dict[str, str] = {}  # name key -> member
        self.names: dict[str, str] = {}  # name key -> name
        # The names as a JSON array, without its closing bracket; None: rebuild.
        self._json: bytearray | None = None

    def add(self, key: str, name: str, member: str) -> None:
        self.holders[key] = member
        self.names[key] = name
        if self._json is not None:
            self._json += (b"," if len(self.names) > 1 else b"") + orjson.dumps(name)

    def remove(self, key: str) -> None:
        del self.holders[key], self.names[key]
        self._json = None

    def members_json(self) -> bytes:
        """The names in join order, as a JSON array."""
        if self._json is None:
            self._json = bytearray(orjson.dumps(list(self.names.values()))[:-1])
        return bytes(self._json + b"]")


class LocalPresence:
    """The registry of one process, for the in-process channel layer."""

    def __init__(self) -> None:
        self._rooms: dict[str, _LocalRoom] = {}

    async def claim(self, *, room: str, name: str, member: str) -> Claim:
        entry = self._rooms.get(room)
        if entry is None:
            entry = self._rooms[room] = _LocalRoom()
        key = name_key(name)
        if key in entry.holders:
            return Claim(members_json=None)
        entry.add(key, name, member)
        return Claim(members_json=entry.members_json(), count=len(entry.names))

    async def release(self, *, room: str, name: str, member: str) -> Release | None:
        entry = self._rooms.get(room)
        key = name_key(name)
        if entry is None or entry.holders.get(key) != member:
            return None
        entry.remove(key)
        if not entry.holders:
            del self._rooms[room]
        return Release(count=len(entry.holders))

    async def members(self, *, room: str) -> list[str]:
        entry = self._rooms.get(room)
        return [] if entry is None else list(entry.names.values())

    async def counts(self) -> dict[str, int]:
        return {room: len(entry.holders) for room, entry in self._rooms.items()}


@functools.cache
def get_presence() -> Presence:
    """The registry of this process: Redis-backed when REDIS_URL is set."""
    if settings.REDIS_URL:
        from .presence_events import announce_expired, evict
        from .presence_redis import RedisPresence

        return RedisPresence(
            settings.REDIS_URL,
            ttl=settings.CHAT_PRESENCE_TTL_SECONDS,
            on_expired=announce_expired,
            on_evicted=evict,
        )
    return LocalPresence()
