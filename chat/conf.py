"""The live chat settings: read from the database, cached briefly in each process.

Every process reloads the snapshot at most every REFRESH_SECONDS, so a change
made in admin or with `manage.py chat_settings` is obeyed everywhere within
that time, with no database query on the path of a chat frame. There is no
invalidation signal on purpose: a signal only reaches the process that sent
it, and every other process would keep a stale copy.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType

from channels.db import database_sync_to_async

from . import defaults
from .models import ChatSettings, Room

# SPEC: a change is applied by every process within 5 s. Reloading every 2 s
# leaves room for a slow query and the frame already in flight.
REFRESH_SECONDS = 2.0


class RoomStatus(Enum):
    OPEN = "open"
    CLOSED = "closed"
    MISSING = "missing"


@dataclass(frozen=True, slots=True)
class ChatConfig:
    """An immutable snapshot of ChatSettings and the rooms' open flags."""

    max_name_length: int = defaults.MAX_NAME_LENGTH
    max_message_length: int = defaults.MAX_MESSAGE_LENGTH
    rate_limit_per_second: float = defaults.RATE_LIMIT_PER_SECOND
    rate_limit_burst: int = defaults.RATE_LIMIT_BURST
    typing_interval_seconds: float = defaults.TYPING_INTERVAL_SECONDS
    allow_adhoc_rooms: bool = defaults.ALLOW_ADHOC_ROOMS
    banner: str = defaults.BANNER
    rooms: Mapping[str, bool] = field(default_factory=lambda: MappingProxyType({}))

    def room_status(self, slug: str) -> RoomStatus:
        is_open = self.rooms.get(slug)
        if is_open is None:
            return RoomStatus.OPEN if self.allow_adhoc_rooms else RoomStatus.MISSING
        return RoomStatus.OPEN if is_open else RoomStatus.CLOSED


def load_config() -> ChatConfig:
    """Read a fresh snapshot from the database (sync; two small queries)."""
    row = ChatSettings.load()
    rooms = dict(Room.objects.values_list("slug", "is_open"))
    return ChatConfig(
        max_name_length=row.max_name_length,
        max_message_length=row.max_message_length,
        rate_limit_per_second=row.rate_limit_per_second,
        rate_limit_burst=row.rate_limit_burst,
        typing_interval_seconds=row.typing_interval_seconds,
        allow_adhoc_rooms=row.allow_adhoc_rooms,
        banner=row.banner,
        rooms=MappingProxyType(rooms),
    )


class ConfigCache:
    """Holds the newest snapshot and reloads it once it is older than `ttl`."""

    def __init__(
        self,
        *,
        ttl: float = REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        loader: Callable[[], ChatConfig] = load_config,
    ) -> None:
        self._ttl = ttl
        self._clock = clock
        self._load = database_sync_to_async(loader)
        self._config: ChatConfig | None = None
        self._loaded_at = 0.0
        self._reload: asyncio.Task[ChatConfig] | None = None

    async def get(self) -> ChatConfig:
        """The current snapshot; concurrent callers share one reload."""
        config = self._config
        if config is not None and self._clock() - self._loaded_at < self._ttl:
            return config
        reload = self._reload
        if reload is None or reload.done() or reload.get_loop() is not asyncio.get_running_loop():
            reload = self._reload = asyncio.ensure_future(self._fetch())
        return await asyncio.shield(reload)

    async def _fetch(self) -> ChatConfig:
        config = await self._load()
        self._config = config
        self._loaded_at = self._clock()
        return config

    def expire(self) -> None:
        """Forget the snapshot, so the next `get` reads the database (tests, commands)."""
        self._config = None


_cache = ConfigCache()


async def get_config() -> ChatConfig:
    """The live settings for this process."""
    return await _cache.get()


def expire_config() -> None:
    _cache.expire()
