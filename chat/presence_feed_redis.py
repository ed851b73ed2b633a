"""Presence diffs shared by every process on one Redis: at most one diff a second per room.

Coalescing in each process alone (chat.presence_feed.PresenceFeed) would let
a room spread over P processes hear P diffs a second, and a process that
dies with thousands of members would have its survivors announce each
leave on its own. Instead the registry (chat.presence_redis) adds every
join and leave of a large room to one list in Redis, with the claim or
release itself, and every process that added to it runs a sender for the
room. A sender takes the list only if no diff of the room went out in the
last interval (a key with that expiry says when one did), so whichever
comes first sends everybody's events in one diff, and the others find the
list empty and stop.

Keys, under the registry's prefix:
  diff:<room>       list    the room's next diff (written by chat.presence_redis)
  diff-sent:<room>  string  exists for an interval after a diff was taken
"""

from __future__ import annotations

import asyncio
import logging

import orjson

from .presence_feed import DIFF_INTERVAL_SECONDS, Publish, diff_frame
from .presence_redis import REDIS_ERRORS, RedisPresence, lua_script
from .tasks import stop_if_cancelled

logger = logging.getLogger(__name__)

_MARKED_EVENTS = {"+": "join", "-": "leave"}

# ARGV: prefix, room, interval ms
# -> {} when nothing is pending; {ms} while the last diff is younger than the
# interval (try again in ms); {count, entries} to send, the list emptied.
_TAKE = r"""
local p, room = ARGV[1], ARGV[2]
local pending, sent = p .. 'diff:' .. room, p .. 'diff-sent:' .. room
if redis.call('EXISTS', pending) == 0 then return {} end
local wait = redis.call('PTTL', sent)
if wait > 0 then return {wait} end
redis.call('SET', sent, '1', 'PX', ARGV[3])
local entries = redis.call('LRANGE', pending, 0, -1)
redis.call('DEL', pending)
return {tonumber(redis.call('HGET', p .. 'counts', room) or '0'), entries}
"""
TAKE = lua_script(_TAKE)


def _latest_events(entries: list[str]) -> dict[str, str]:
    """Name -> its latest event, in the order of those events."""
    events: dict[str, str] = {}
    for entry in entries:
        name = orjson.loads(entry[1:])
        events.pop(name, None)
        events[name] = _MARKED_EVENTS[entry[0]]
    return events


class SharedPresenceFeed:
    """The `Feed` of every process on one Redis: sends what the registry noted."""

    def __init__(self, presence: RedisPresence, *, interval: float = DIFF_INTERVAL_SECONDS) -> None:
        self.presence = presence
        self.interval = interval
        # room -> this process's sender of its diffs, while it has one.
        self._senders: dict[str, asyncio.Task[None]] = {}

    async def coalesce(
        self, *, room: str, event: str, name: str, count: int, publish: Publish, noted: bool = False
    ) -> bool:
        """Make sure a noted event is sent in a diff; False for one to send now."""
        if not noted:
            return False
        # A sender that found the list empty has left _senders before this
        # runs if Redis emptied the list before the event was noted: the
        # replies of the registry's one connection come back, and wake their
        # awaiters, in the order Redis ran the commands. So no noted event is
        # left without a sender.
        loop = asyncio.get_running_loop()
        sender = self._senders.get(room)
        if sender is None or sender.done() or sender.get_loop() is not loop:
            self._senders[room] = loop.create_task(
                self._send(room, publish), name=f"chat-presence-diff-{room}"
            )
        return True

    async def _send(self, room: str, publish: Publish) -> None:
        """Send the room's pending events, one diff per interval, until none are left."""
        interval_ms = int(self.interval * 1000)
        delay = self.interval
        while True:
            await asyncio.sleep(delay)
            delay = self.interval
            try:
                reply = await self.presence.run_script(*TAKE, room, interval_ms)
            except REDIS_ERRORS as error:
                stop_if_cancelled()
                # The events stay in Redis; the next attempt sends them.
                logger.warning("presence diff of %s: Redis unavailable: %s", room, error)
                continue
            if not reply:
                # Sent, by this process or another. Synchronously, before any
                # other awaiter of the connection runs (see coalesce).
                if self._senders.get(room) is asyncio.current_task():
                    del self._senders[room]
                return
            if len(reply) == 1:
                delay = max(int(reply[0]), 1) / 1000
                continue
            count, entries = reply
            try:
                await publish(diff_frame(_latest_events(entries), count=int(count)))
            except Exception:
                # Taken from Redis, so lost: log it; the next diff goes on.
                stop_if_cancelled()
                logger.exception("could not send the presence diff of room %s", room)
