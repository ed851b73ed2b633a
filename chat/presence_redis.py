"""The name registry in Redis, shared by every process on the same Redis.

Each claim is one Lua script, so two processes racing for a name cannot both
win. Every entry carries a deadline (Redis's own clock, so the processes'
clocks do not matter) that its process pushes forward while the member is
connected. A process killed with SIGKILL stops refreshing, and whichever
process next runs the sweep script removes the dead entries and gets them
back, exactly once, to announce their `presence leave`.

Keys, under PREFIX (<json> is a name encoded as a JSON string, quotes included):
  room:<room>   hash   name key -> "<member>\\t<json>"  (who holds a name)
  names:<room>  string "\n<json>\n<json>\n..."            (members in join order)
  deadlines     zset   "<room>\\t<name key>\\t<member>" by deadline in ms
  counts        hash   room -> members                   (rooms with members)
  diff:<room>   list   "+<json>" (join) or "-<json>" (leave) (the room's next diff)

A join or leave of a room with more than `coalesce_above` members, or of a
room whose next diff is pending, goes into `diff:<room>` in the same script
that claims or frees the name, and the caller is told so (`noted`): one
round trip per join in a reconnect storm, and no event of a member can
overtake the diff that holds its earlier one. chat.presence_feed_redis
sends the diffs, one per room and interval for all the processes.

Every claim answers with the room's member list, so in a reconnect storm of
N members Redis hands out N lists: `names:<room>` keeps the list as one
ready string, which a claim appends to and returns, a copy of bytes rather
than N names gathered one by one (837 µs a claim at 2,500 members when it
was a sorted set read back per claim). The names in it are JSON already, so
the list becomes the `joined` frame's array by turning newlines into commas,
without being split into N strings and encoded again. JSON escapes control
characters (and a name has none, SPEC), so a newline is never part of one.

Scripts build key names from their arguments, so this needs one Redis, not a
Redis Cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import NoScriptError, RedisError

from .presence import Claim, Release, name_key
from .presence_feed import COALESCE_ABOVE_MEMBERS, DIFF_INTERVAL_SECONDS
from .redis_pipeline import RedisPipeline, open_connection
from .tasks import stop_if_cancelled

logger = logging.getLogger(__name__)

# What a Redis outage raises: redis-py's own errors, and the OS's when a
# socket breaks underneath it.
REDIS_ERRORS = (RedisError, OSError)

PREFIX = "chat:presence:"
# Production default; settings.CHAT_PRESENCE_TTL_SECONDS overrides it.
DEFAULT_TTL_SECONDS = 10.0
# Refresh and sweep four times per TTL: a process may miss three beats (a
# long GC pause, a busy loop) before its members are taken for dead.
BEATS_PER_TTL = 4
# Entries per script call, so that one call never holds Redis for long.
BATCH = 500
# A room's pending diff outlives every process that could send it by this
# many intervals at most (all of them died between two sends): long enough
# for a sender to ride out a few failed attempts, short enough that nobody
# hears of stale joins long after.
PENDING_INTERVALS = 10
# Presence commands never block in Redis, so a connection that answers
# nothing for this long is dead; the connect timeout keeps a down Redis from
# hanging a join. All of a process's presence commands share one pipelined
# connection (chat.redis_pipeline).
SOCKET_TIMEOUT_SECONDS = 5.0
CONNECT_TIMEOUT_SECONDS = 2.0

_LUA_LIB = r"""
local p = ARGV[1]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function holder(held)
  local tab = string.find(held, '\t', 1, true)
  return string.sub(held, 1, tab - 1), string.sub(held, tab + 1)
end

-- The names in join order as stored: a newline before each and after the last.
local function members(room)
  return redis.call('GET', p .. 'names:' .. room) or ''
end

local function remove_name(room, name)
  local nkey = p .. 'names:' .. room
  local names = redis.call('GET', nkey)
  if not names then return end
  local at = string.find(names, '\n' .. name .. '\n', 1, true)
  if not at then return end
  names = string.sub(names, 1, at) .. string.sub(names, at + #name + 2)
  if names == '\n' then
    redis.call('DEL', nkey)
  else
    redis.call('SET', nkey, names)
  end
end

-- Add a join ('+') or leave ('-') to the room's next diff if the room is
-- large or a diff is pending: 1 if it did, 0 if the event is to be sent now.
local function note(room, mark, name, count, above, pending_ms)
  local pending = p .. 'diff:' .. room
  if count <= tonumber(above) and redis.call('EXISTS', pending) == 0 then return 0 end
  redis.call('RPUSH', pending, mark .. name)
  redis.call('PEXPIRE', pending, pending_ms)
  return 1
end

-- Free `key` in `room` if `member` holds it: its name and the count after,
-- or nil if somebody else (or nobody) holds it.
local function drop(room, key, member)
  local hkey = p .. 'room:' .. room
  local held = redis.call('HGET', hkey, key)
  if not held then return nil end
  local owner, name = holder(held)
  if owner ~= member then return nil end
  redis.call('HDEL', hkey, key)
  remove_name(room, name)
  redis.call('ZREM', p .. 'deadlines', room .. '\t' .. key .. '\t' .. member)
  local count = redis.call('HINCRBY', p .. 'counts', room, -1)
  if count <= 0 then
    redis.call('HDEL', p .. 'counts', room)
    count = 0
  end
  return name, count
end
"""

# ARGV: prefix, room, name key, name as JSON, member, ttl ms, coalesce above, pending ms
# -> the count, the names (as members()) and whether the join was noted; or nil.
_CLAIM = (
    _LUA_LIB
    + r"""
local room, key, name, member = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local hkey = p .. 'room:' .. room
if redis.call('HEXISTS', hkey, key) == 1 then return nil end
redis.call('HSET', hkey, key, member .. '\t' .. name)
local nkey = p .. 'names:' .. room
if redis.call('EXISTS', nkey) == 0 then redis.call('SET', nkey, '\n') end
redis.call('APPEND', nkey, name .. '\n')
redis.call('ZADD', p .. 'deadlines', now_ms() + tonumber(ARGV[6]),
           room .. '\t' .. key .. '\t' .. member)
local count = redis.call('HINCRBY', p .. 'counts', room, 1)
return {count, members(room), note(room, '+', name, count, ARGV[7], ARGV[8])}
"""
)

# ARGV: prefix, room, name key, member, coalesce above, pending ms
# -> the count after and whether the leave was noted; or nil.
_RELEASE = (
    _LUA_LIB
    + r"""
local name, count = drop(ARGV[2], ARGV[3], ARGV[4])
if not name then return nil end
return {count, note(ARGV[2], '-', name, count, ARGV[5], ARGV[6])}
"""
)

# ARGV: prefix, room -> the names in join order.
_MEMBERS = _LUA_LIB + "return members(ARGV[2])\n"

# ARGV: prefix, ttl ms, entry... -> the entries that are gone (swept or freed).
_REFRESH = (
    _LUA_LIB
    + r"""
local deadline = now_ms() + tonumber(ARGV[2])
local gone = {}
for i = 3, #ARGV do
  if redis.call('ZSCORE', p .. 'deadlines', ARGV[i]) then
    redis.call('ZADD', p .. 'deadlines', deadline, ARGV[i])
  else
    gone[#gone + 1] = ARGV[i]
  end
end
return gone
"""
)

# ARGV: prefix, limit, coalesce above, pending ms
# -> room, name as JSON, member, count, noted for each expired member, flat.
_SWEEP = (
    _LUA_LIB
    + r"""
local expired = redis.call('ZRANGEBYSCORE', p .. 'deadlines', '-inf', now_ms(),
                           'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, entry in ipairs(expired) do
  redis.call('ZREM', p .. 'deadlines', entry)
  local room, key, member = string.match(entry, '^([^\t]*)\t([^\t]*)\t(.*)$')
  local name, count = drop(room, key, member)
  if name then
    out[#out + 1] = room
    out[#out + 1] = name
    out[#out + 1] = member
    out[#out + 1] = count
    out[#out + 1] = note(room, '-', name, count, ARGV[3], ARGV[4])
  end
end
return out
"""
)


@dataclass(frozen=True, slots=True)
class Expired:
    """A member whose process stopped refreshing it: it has left `room`."""

    room: str
    name: str
    member: str
    count: int
    # Whether its leave went into the room's next diff (see the module's doc).
    noted: bool = False


ExpiredHandler = Callable[[Sequence[Expired]], Awaitable[None]]
EvictedHandler = Callable[[Sequence[str]], Awaitable[None]]


def _entry(room: str, name: str, member: str) -> str:
    return f"{room}\t{name_key(name)}\t{member}"


def _names_json(reply: str) -> str:
    """The scripts' `members()` ("\\n<json>\\n<json>\\n", or "") as a JSON array."""
    return "[" + reply[1:-1].replace("\n", ",") + "]"


def _member_of(entry: str) -> str:
    return entry.rsplit("\t", 1)[1]


# Each script by name: its source, and the SHA1 that EVALSHA runs it by.
def lua_script(source: str) -> tuple[str, str]:
    """A Lua script's source and the SHA1 that EVALSHA runs it by (see `run_script`)."""
    return source, hashlib.sha1(source.encode()).hexdigest()


_SCRIPTS = {
    name: lua_script(source)
    for name, source in (
        ("claim", _CLAIM),
        ("release", _RELEASE),
        ("members", _MEMBERS),
        ("refresh", _REFRESH),
        ("sweep", _SWEEP),
    )
}


@dataclass(eq=False)
class _LoopState:
    """What belongs to one event loop: its connection, upkeep task and members."""

    # Holds the connection settings; its own pool is never used.
    client: Redis
    pipeline: RedisPipeline
    held: set[str] = field(default_factory=set)
    upkeep: asyncio.Task[None] | None = None


class RedisPresence:
    """The `Presence` registry in Redis, for any number of processes.

    `on_expired` hears of the members of dead processes that this process's
    sweep removed; `on_evicted` hears of this process's own members whose
    entries were swept while they were still connected (the process stalled
    longer than the TTL), so that they can be disconnected and rejoin.
    """

    def __init__(
        self,
        url: str,
        *,
        ttl: float = DEFAULT_TTL_SECONDS,
        prefix: str = PREFIX,
        on_expired: ExpiredHandler | None = None,
        on_evicted: EvictedHandler | None = None,
        upkeep: bool = True,
        coalesce_above: int = COALESCE_ABOVE_MEMBERS,
        diff_interval: float = DIFF_INTERVAL_SECONDS,
    ) -> None:
        self.url = url
        self.ttl = ttl
        # Passed to the scripts that note joins and leaves in diffs.
        self._diff_args = (coalesce_above, int(diff_interval * PENDING_INTERVALS * 1000))
        self.interval = ttl / BEATS_PER_TTL
        self.prefix = prefix
        self.on_expired = on_expired
        self.on_evicted = on_evicted
        self.run_upkeep = upkeep
        self._loop: asyncio.AbstractEventLoop | None = None
        self._state: _LoopState | None = None

    def _current(self) -> _LoopState:
        """This loop's state; redis.asyncio connections belong to the loop that made them."""
        loop = asyncio.get_running_loop()
        if self._state is None or self._loop is not loop:
            client = Redis.from_url(
                self.url,
                socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
                decode_responses=True,
            )
            pipeline = RedisPipeline(
                functools.partial(
                    open_connection,
                    client,
                    setup_seconds=CONNECT_TIMEOUT_SECONDS + SOCKET_TIMEOUT_SECONDS,
                ),
                reply_timeout=SOCKET_TIMEOUT_SECONDS,
                name="chat-presence",
            )
            self._loop, self._state = loop, _LoopState(client=client, pipeline=pipeline)
        state = self._state
        if self.run_upkeep and (state.upkeep is None or state.upkeep.done()):
            state.upkeep = loop.create_task(self._upkeep(state), name="chat-presence-upkeep")
        return state

    async def _run(self, state: _LoopState, script: str, *args: str | int) -> Any:
        return await self._eval(state, *_SCRIPTS[script], *args)

    async def _eval(self, state: _LoopState, source: str, sha: str, *args: str | int) -> Any:
        try:
            return await state.pipeline.execute("EVALSHA", sha, 0, self.prefix, *args)
        except NoScriptError:
            # A Redis restarted (or flushed) since: EVAL caches it again.
            return await state.pipeline.execute("EVAL", source, 0, self.prefix, *args)

    async def run_script(self, source: str, sha: str, *args: str | int) -> Any:
        """Run a Lua script on the registry's connection; its ARGV: the key prefix, then `args`.

        For modules whose keys live beside the registry's and whose scripts
        read them (chat.presence_feed_redis takes `diff:<room>`): their
        commands share the one connection, its batched writes and the order
        of its replies.
        """
        return await self._eval(self._current(), source, sha, *args)

    # The Presence protocol.

    async def claim(self, *, room: str, name: str, member: str) -> Claim:
        state = self._current()
        ttl_ms = int(self.ttl * 1000)
        encoded = orjson.dumps(name).decode()
        reply = await self._run(
            state, "claim", room, name_key(name), encoded, member, ttl_ms, *self._diff_args
        )
        if reply is None:
            return Claim(members_json=None)
        state.held.add(_entry(room, name, member))
        count, names, noted = reply
        return Claim(members_json=_names_json(names), count=int(count), noted=bool(noted))

    async def release(self, *, room: str, name: str, member: str) -> Release | None:
        state = self._current()
        # Stop refreshing first: if Redis is down now, the entry still expires.
        state.held.discard(_entry(room, name, member))
        reply = await self._run(state, "release", room, name_key(name), member, *self._diff_args)
        if reply is None:
            return None
        count, noted = reply
        return Release(count=int(count), noted=bool(noted))

    async def members(self, *, room: str) -> list[str]:
        return orjson.loads(_names_json(await self._run(self._current(), "members", room)))

    async def counts(self) -> dict[str, int]:
        flat = await self._current().pipeline.execute("HGETALL", self.prefix + "counts")
        return {flat[i]: int(flat[i + 1]) for i in range(0, len(flat), 2)}

    async def ping(self) -> None:
        """Raise unless Redis answers (the health probe)."""
        await self._current().pipeline.execute("PING")

    # Upkeep: keep this process's members alive, and bury other processes' dead.

    async def refresh(self) -> list[str]:
        """Push this process's deadlines forward; the members found gone (evicted)."""
        state = self._current()
        held = list(state.held)
        ttl_ms = int(self.ttl * 1000)
        gone: list[str] = []
        for start in range(0, len(held), BATCH):
            gone += await self._run(state, "refresh", ttl_ms, *held[start : start + BATCH])
        # A member released meanwhile is not evicted: it left by itself.
        evicted = [entry for entry in gone if entry in state.held]
        state.held.difference_update(evicted)
        return [_member_of(entry) for entry in evicted]

    async def sweep(self) -> list[Expired]:
        """Remove every expired member; this process alone gets each one back."""
        state = self._current()
        expired: list[Expired] = []
        while True:
            flat = await self._run(state, "sweep", BATCH, *self._diff_args)
            batch = [
                Expired(
                    room=flat[i],
                    name=orjson.loads(flat[i + 1]),
                    member=flat[i + 2],
                    count=int(flat[i + 3]),
                    noted=bool(flat[i + 4]),
                )
                for i in range(0, len(flat), 5)
            ]
            expired += batch
            if len(batch) < BATCH:
                return expired

    async def _upkeep(self, state: _LoopState) -> None:
        """Refresh and sweep every `interval` until the loop ends."""
        while True:
            try:
                await self._upkeep_once()
            except REDIS_ERRORS as error:
                stop_if_cancelled()
                # Expected while Redis is down; the next beat tries again.
                logger.warning("presence upkeep: Redis unavailable: %s", error)
            except Exception:
                stop_if_cancelled()
                logger.exception("presence upkeep failed")
            await asyncio.sleep(self.interval)

    async def _upkeep_once(self) -> None:
        evicted = await self.refresh()
        if evicted and self.on_evicted is not None:
            logger.warning("%d members of this process expired while connected", len(evicted))
            await self.on_evicted(evicted)
        expired = await self.sweep()
        if expired and self.on_expired is not None:
            logger.info("%d members of a lost process expired", len(expired))
            await self.on_expired(expired)

    async def aclose(self) -> None:
        """Stop the upkeep and close the connections (tests, shutdown)."""
        state, self._state, self._loop = self._state, None, None
        if state is None:
            return
        if state.upkeep is not None:
            state.upkeep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await state.upkeep
        await state.pipeline.aclose()
        await state.client.aclose()
