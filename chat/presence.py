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

from django.conf import settings


def name_key(name: str) -> str:
    """The form in which two names count as the same (case-insensitive)."""
    return name.casefold()


@dataclass(frozen=True, slots=True)
class Claim:
    """The outcome of claiming a name: the members after it, or None if taken."""

    members: list[str] | None

    @property
    def won(self) -> bool:
        return self.members is not None


class Presence(Protocol):
    async def claim(self, *, room: str, name: str, member: str) -> Claim:
        """Claim `name` in `room` for `member` (a channel name), atomically."""

    async def release(self, *, room: str, name: str, member: str) -> int | None:
        """Free the name if `member` holds it; the room's count after, or None."""

    async def members(self, *, room: str) -> list[str]:
        """Names in the room, in the order they joined."""

    async def counts(self) -> dict[str, int]:
        """Members per room, for the rooms that have any."""


class LocalPresence:
    """The registry of one process, for the in-process channel layer."""

    def __init__(self) -> None:
        # room -> name key -> (name, member); dicts keep join order.
        self._rooms: dict[str, dict[str, tuple[str, str]]] = {}

    async def claim(self, *, room: str, name: str, member: str) -> Claim:
        names = self._rooms.setdefault(room, {})
        key = name_key(name)
        if key in names:
            return Claim(members=None)
        names[key] = (name, member)
        return Claim(members=[held for held, _ in names.values()])

    async def release(self, *, room: str, name: str, member: str) -> int | None:
        names = self._rooms.get(room)
        key = name_key(name)
        if not names or names.get(key, (None, None))[1] != member:
            return None
        del names[key]
        if not names:
            del self._rooms[room]
        return len(names)

    async def members(self, *, room: str) -> list[str]:
        return [held for held, _ in self._rooms.get(room, {}).values()]

    async def counts(self) -> dict[str, int]:
        return {room: len(names) for room, names in self._rooms.items()}


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
