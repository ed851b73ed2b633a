"""Presence diffs shared by every process on one Redis: at most one diff a second per room.

Coalescing in each process alone (chat.presence_feed.PresenceFeed) would let
a room spread over P processes hear P diffs a second, and a process that
dies with thousands of members would have its survivors announce each
leave on its own. Here every process appends the joins and leaves of a
large room to one list in Redis, and every process with events in it runs
a flusher for the room; a flusher takes the list only if no diff of the room
went out in the last interval (a key with that expiry says when one did),
so whichever flusher comes first sends everybody's events in one diff and
the others find the list empty and stop.

Keys, under the presence registry's prefix (chat.presence_redis):
  diff:<room>       list    "+<json>" (join) or "-<json>" (leave), in order
  diff-sent:<room>  string  exists for an interval after a diff was taken
"""

from __future__ import annotations

import asyncio
import hashlib
import logging

import orjson

from .presence_feed import COALESCE_ABOVE_MEMBERS, DIFF_INTERVAL_SECONDS, Publish, diff_frame
from .presence_redis import REDIS_ERRORS, RedisPresence
from .tasks import stop_if_cancelled

logger = logging.getLogger(__name__)

# A room's pending events outlive every process that could send them by
# this many intervals at most (all of them died between two flushes): long
# enough for a flusher to ride out a few failed attempts, short enough that
# nobody is told of stale joins long after.
PENDING_INTERVALS = 10

_EVENT_MARKS = {"join": "+", "leave": "-"}
_MARKED_EVENTS = {mark: event for event, mark in _EVENT_MARKS.items()}

# ARGV: prefix, room, entry, count, threshold, expiry ms
# -> 1 if the event waits in the room's list, 0 if it is to be sent now.
# A room with pending events keeps coalescing once it is small again, so
# that no single event overtakes the diff before it.
_NOTE = r"""
local pending = ARGV[1] .. 'diff:' .. ARGV[2]
if tonumber(ARGV[4]) <= tonumber(ARGV[5]) and redis.call('EXISTS', pending) == 0 then
  return 0
end
redis.call('RPUSH', pending, ARGV[3])
redis.call('PEXPIRE', pending, ARGV[6])
return 1
"""

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


def _script(source: str) -> tuple[str, str]:
    return source, hashlib.sha1(source.encode()).hexdigest()


NOTE, TAKE = _script(_NOTE), _script(_TAKE)


def _entry(event: str, name: str) -> str:
    return _EVENT_MARKS[event] + orjson.dumps(name).decode()


def _latest_events(entries: list[str]) -> dict[str, str]:
    """Name -> its latest event, in the order of those events."""
    events: dict[str, str] = {}
    for entry in entries:
        name = orjson.loads(entry[1:])
        events.pop(name, None)
        events[name] = _MARKED_EVENTS[entry[0]]
    return events


class SharedPresenceFeed:
    """The `Feed` of every process on one Redis, through the presence registry's connection."""

    def __init__(
        self,
        presence: RedisPresence,
        *,
        threshold: int = COALESCE_ABOVE_MEMBERS,
        interval: float = DIFF_INTERVAL_SECONDS,
    ) -> None:
        self.presence = presence
        self.threshold = threshold
        self.interval = interval
        # room -> this process's flusher of it, while it has one.
        self._flushers: dict[str, asyncio.Task[None]] = {}

    async def coalesce(
        self, *, room: str, event: str, name: str, count: int, publish: Publish
    ) -> bool:
        """Add the event to the room's list in Redis, or return False to send it now."""
        expiry_ms = int(self.interval * PENDING_INTERVALS * 1000)
        noted = await self.presence.run_script(
            *NOTE, room, _entry(event, name), count, self.threshold, expiry_ms
        )
        if not noted:
            return False
        # A flusher that found the list empty has left _flushers before this
        # runs if Redis emptied it before adding this event: the replies of
        # the one presence connection come back, and wake their awaiters, in
        # the order Redis ran the commands. So an event is never stranded.
        loop = asyncio.get_running_loop()
        flusher = self._flushers.get(room)
        if flusher is None or flusher.done() or flusher.get_loop() is not loop:
            self._flushers[room] = loop.create_task(
                self._flush(room, publish), name=f"chat-presence-diff-{room}"
            )
        return True

    async def _flush(self, room: str, publish: Publish) -> None:
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
                if self._flushers.get(room) is asyncio.current_task():
                    del self._flushers[room]
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
