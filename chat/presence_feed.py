"""Presence announcements of large rooms, coalesced into one diff frame per interval.

SPEC allows rooms with more than 100 members to hear joins and leaves as at
most one `{"type": "presence", "event": "diff", ...}` frame a second: a
reconnect storm of N members then costs each member O(N) names in a few
frames, not N frames, and the server O(N) frames instead of O(N²).

A diff holds each name's latest event only, so `joins` and `leaves` never
share a name (the page applies joins, then leaves): a member who joined and
left within one interval is a leave, which is a no-op for whoever never saw
the join and removes the name for whoever saw it in a `joined` list.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from . import protocol

logger = logging.getLogger(__name__)

# SPEC: coalescing is allowed for rooms with more than 100 members...
COALESCE_ABOVE_MEMBERS = 100
# ...at most one diff frame a second per room.
DIFF_INTERVAL_SECONDS = 1.0

# Sends one frame to every member of a group.
Publish = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(slots=True)
class _Batch:
    publish: Publish
    count: int = 0
    # name -> "join" or "leave", in the order of each name's latest event.
    events: dict[str, str] = field(default_factory=dict)
    flush: asyncio.Task | None = None


class PresenceFeed:
    """The pending diffs of one process, by group; one flush task per pending group."""

    def __init__(
        self,
        *,
        threshold: int = COALESCE_ABOVE_MEMBERS,
        interval: float = DIFF_INTERVAL_SECONDS,
    ) -> None:
        self.threshold = threshold
        self.interval = interval
        self._batches: dict[str, _Batch] = {}

    def coalesce(self, *, group: str, event: str, name: str, count: int, publish: Publish) -> bool:
        """Take the event into the group's next diff, or return False to send it now.

        A group with a pending diff keeps coalescing even once it is small
        again, so that no single event overtakes the diff before it.
        """
        batch = self._batches.get(group)
        if batch is not None and (batch.flush is None or batch.flush.done()):
            # Its flush belonged to an event loop that has since ended (tests).
            del self._batches[group]
            batch = None
        if batch is None:
            if count <= self.threshold:
                return False
            batch = self._batches[group] = _Batch(publish=publish)
            batch.flush = asyncio.get_running_loop().create_task(self._flush_later(group))
        batch.events.pop(name, None)
        batch.events[name] = event
        batch.count = count
        return True

    async def _flush_later(self, group: str) -> None:
        try:
            await asyncio.sleep(self.interval)
            batch = self._batches.pop(group)
            joins = [name for name, event in batch.events.items() if event == "join"]
            leaves = [name for name, event in batch.events.items() if event == "leave"]
            await batch.publish(
                protocol.presence_diff_frame(joins=joins, leaves=leaves, count=batch.count)
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("could not send the presence diff of %s", group)


@functools.cache
def get_presence_feed() -> PresenceFeed:
    """The presence feed of this process."""
    return PresenceFeed()
