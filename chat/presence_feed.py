"""Presence announcements of large rooms, coalesced into one diff frame per interval.

SPEC allows rooms with more than 100 members to hear joins and leaves as at
most one `{"type": "presence", "event": "diff", ...}` frame a second: a
reconnect storm of N members then costs each member O(N) names in a few
frames, not N frames, and the server O(N) frames instead of O(N²).

A diff holds each name's latest event only, so `joins` and `leaves` never
share a name (the page applies joins, then leaves): a member who joined and
left within one interval is a leave, which is a no-op for whoever never saw
the join and removes the name for whoever saw it in a `joined` list.

`PresenceFeed` coalesces the events of one process, for the in-process
channel layer. With REDIS_URL set, the events of every process go into one
diff a second per room (`chat.presence_feed_redis.SharedPresenceFeed`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.conf import settings

from . import protocol

logger = logging.getLogger(__name__)

# SPEC: coalescing is allowed for rooms with more than 100 members...
COALESCE_ABOVE_MEMBERS = 100
# ...at most one diff frame a second per room.
DIFF_INTERVAL_SECONDS = 1.0

# Sends one frame to every member of a room.
Publish = Callable[[dict[str, Any]], Awaitable[None]]


class Feed(Protocol):
    async def coalesce(
        self, *, room: str, event: str, name: str, count: int, publish: Publish, noted: bool = False
    ) -> bool:
        """Take a join or leave into the room's next diff, or return False to send it now.

        `count` is the room's member count after the event; `publish`, which
        sends a frame to the whole room, sends the diff. `noted`: the
        registry has put the event in the room's shared diff already, with
        the claim or release (chat.presence_redis); never in-process.
        """


def diff_frame(events: dict[str, str], *, count: int) -> dict[str, Any]:
    """The diff of each name's latest event (name -> "join" or "leave", in event order)."""
    joins = [name for name, event in events.items() if event == "join"]
    leaves = [name for name, event in events.items() if event == "leave"]
    return protocol.presence_diff_frame(joins=joins, leaves=leaves, count=count)


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
            logger.exception("could not send the presence diff of room %s", room)


@functools.cache
def get_presence_feed() -> Feed:
    """The presence feed of this process: shared by every process when REDIS_URL is set."""
    if settings.REDIS_URL:
        from .presence import get_presence
        from .presence_feed_redis import SharedPresenceFeed

        return SharedPresenceFeed(get_presence())
    return PresenceFeed()
