"""The Redis presence backend: the name registry and the presence diffs of every process.

Each claim is one Lua script, so two processes racing for a name, or for
two names that clash (chat.names), cannot both win. Every entry carries a
deadline (Redis's own clock, so the processes' clocks do not matter) that its
process pushes forward while the member is connected. A process killed with
SIGKILL stops refreshing, and whichever process next runs the sweep script
removes the dead entries and gets them back, exactly once, to announce their
`presence leave`.

Keys, under PREFIX (<json> is a name encoded as a JSON string, quotes included):
  room:<room>       hash   name key -> "<member>\\t<json>\\t<skeleton key>"
                                                    (who holds a name)
  skeletons:<room>  hash   skeleton key -> name key (the look of each name held)
  joined:<room>     hash   name key -> "<ms>\\t<address>" (when it joined, from where)
  names:<room>      string "\n<json>\n<json>\n..."  (members in join order)
  names-epoch:<room> string a large room's list's epoch (dropped when the list is rewritten)
  epochs            string the last epoch given, for any room
  deadlines         zset   "<room>\\t<name key>\\t<member>" by deadline in ms
  counts            hash   room -> members          (rooms with members)
  diff:<room>       list   "+<json>" (join) or "-<json>" (leave) (the room's next diff)
  diff-sent:<room>  string exists for an interval after a diff was taken

A join or leave of a room with more than `coalesce_above` members, or of a
room whose next diff is pending, goes into `diff:<room>` in the same script
that claims or frees the name, and the caller is told so (`noted`): one
round trip per join in a reconnect storm, and no event of a member can
overtake the diff that holds its earlier one. `SharedPresenceFeed` sends
the diffs, one per room and interval for all the processes (see its doc).

Every claim answers with the room's member list, so in a reconnect storm of
N members the list is asked for N times. `names:<room>` keeps it as one
ready string, which a claim appends to, rather than N names gathered one by
one (837 µs a claim at 2,500 members when it was a sorted set read back per
claim). And a process keeps a copy of each large room's list that it has
members in (chat.presence.listing), so that the claim sends only the bytes
added since that copy, while the list has only grown (its epoch, which a
leave drops, says so): a storm's join costs Redis and the wire the names
that joined since the process's previous claim, not the whole room. The
names in the list are JSON already, so it becomes the `joined` frame's array
by turning newlines into commas, without being split into N strings and
encoded again. JSON escapes control characters (and a name has none, SPEC),
so a newline is never part of one.

A process of the first edition, during a rolling upgrade, neither reads nor
drops epochs: a leave it frees rewrites the list under the same epoch.
The claim script checks that the list still ends a name where the copy
ended, which catches most such rewrites (the list is then sent whole and the
copy made anew); one it misses leaves a copy with a name too many, or too
few, until the next leave drops the epoch.

The live members page needs each member's join time and client address:
they have a hash of their own rather than a longer entry in `room:<room>`, so
that a process of the previous release, during a rolling restart, still reads
every entry it finds there. That is one more HSET per claim and HDEL per
release, in the same script and round trip; the claim makes up for part of it
(HSETNX claims and checks at once, APPEND makes the list's key): measured
interleaved on one Redis, a claim costs Redis about 2 µs more (about 8 %) in a
room of 10 and at most 3 µs more (under 7 %) at 2,500 members, a release
about 1 µs more (docs/performance.md, `python -m bench.claim_ab`).

Scripts build key names from their arguments, so this needs one Redis, not a
Redis Cluster.

The scripts are files in lua/ beside this module: each registry script is
lua/lib.lua followed by its own file.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import orjson
from redis.asyncio import Redis

from ..names import name_key, skeleton_key
from ..redis.errors import REDIS_ERRORS, stop_if_cancelled
from ..redis.loops import PerLoop, keep_trying, stop
from ..redis.pipeline import RedisPipeline, open_connection
from ..redis.scripts import LuaScript
from . import expiry
from .base import (
    COALESCE_ABOVE_MEMBERS,
    DIFF_INTERVAL_SECONDS,
    Claim,
    EvictedHandler,
    Expired,
    ExpiredHandler,
    LiveMember,
    Publish,
    Release,
    diff_frame,
)
from .listing import MemberLists, as_array

logger = logging.getLogger(__name__)

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
# connection (chat.redis.pipeline).
SOCKET_TIMEOUT_SECONDS = 5.0
CONNECT_TIMEOUT_SECONDS = 2.0

_LUA = Path(__file__).with_name("lua")
_LIB = (_LUA / "lib.lua").read_text()
CLAIM, RELEASE, MEMBERS, REFRESH, SWEEP, LIVE = (
    LuaScript.load(_LUA, name, prelude=_LIB)
    for name in ("claim", "release", "members", "refresh", "sweep", "live")
)
TAKE_DIFF = LuaScript.load(_LUA, "take_diff")

_MARKED_EVENTS = {"+": "join", "-": "leave"}


def _entry(room: str, name: str, member: str) -> str:
    return f"{room}\t{name_key(name)}\t{member}"


def _member_of(entry: str) -> str:
    return entry.rsplit("\t", 1)[1]


def _live_member(room: str, held: str, joined: str) -> LiveMember:
    """A member from its entries in `room:<room>` and `joined:<room>` (see the module doc)."""
    # "<member>\t<json>\t<skeleton key>"; neither of the first two holds a tab.
    member, name = held.split("\t", 2)[:2]
    # An entry claimed by a release before join times were kept has none.
    joined_ms, _, address = joined.partition("\t")
    return LiveMember(
        room=room,
        name=orjson.loads(name),
        member=member,
        joined_at=datetime.fromtimestamp(int(joined_ms or 0) / 1000, UTC),
        address=address,
    )


@dataclass(eq=False)
class _LoopState:
    """What belongs to one event loop: its connection, upkeep task and members."""

    # Holds the connection settings; its own pool is never used.
    client: Redis
    pipeline: RedisPipeline
    lists: MemberLists
    held: set[str] = field(default_factory=set)
    upkeep: asyncio.Task[None] | None = None


class RedisPresence:
    """The `Presence` registry in Redis, for any number of processes.

    `on_expired` hears of the members of dead processes that this process's
    sweep removed (by default the room hears their leaves, chat.presence.expiry);
    `on_evicted` hears of this process's own members whose entries were swept
    while they were still connected (the process stalled longer than the
    TTL), so that they can be disconnected and rejoin.
    """

    extensions: ClassVar[list[str]] = ["ping", "shared"]

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
        self.feed = SharedPresenceFeed(self, interval=diff_interval)
        self.on_expired = on_expired or functools.partial(expiry.announce_expired, feed=self.feed)
        self.on_evicted = on_evicted or expiry.evict
        self.run_upkeep = upkeep
        self._state = PerLoop(self._make_state)

    def _make_state(self, loop: asyncio.AbstractEventLoop) -> _LoopState:
        client = Redis.from_url(
            self.url, socket_connect_timeout=CONNECT_TIMEOUT_SECONDS, decode_responses=True
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
        return _LoopState(
            client=client, pipeline=pipeline, lists=MemberLists(keep_above=self._diff_args[0])
        )

    def _current(self) -> _LoopState:
        """This loop's state, its upkeep running."""
        state = self._state.get()
        if self.run_upkeep and (state.upkeep is None or state.upkeep.done()):
            state.upkeep = asyncio.get_running_loop().create_task(
                keep_trying(self._upkeep_once, what="presence upkeep", pause=lambda: self.interval),
                name="chat-presence-upkeep",
            )
        return state

    async def run(self, script: LuaScript, *args: str | int) -> Any:
        """Run one of this backend's scripts; its ARGV: the key prefix, then `args`."""
        return await script.run(self._current().pipeline, self.prefix, *args)

    # The Presence protocol.

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
        ttl_ms = int(self.ttl * 1000)
        encoded = orjson.dumps(name).decode()
        keys = name_key(name), skeleton_key(name)
        state = self._current()
        lists = state.lists
        known = lists.asking(room)
        try:
            reply = await self.run(
                CLAIM,
                room,
                *keys,
                encoded,
                member,
                ttl_ms,
                *self._diff_args,
                address,
                limit,
                takeover or "",
                *known,
            )
        except BaseException:
            lists.refused(room)
            raise
        if reply is None or reply == "full":
            lists.refused(room)
            return Claim(members_json=None, full=reply == "full")
        state.held.add(_entry(room, name, member))
        count, names, noted, serial, *replaced = reply
        # The whole list of a small room, or a piece of a large one's (lua/lib.lua, listing).
        epoch, offset, piece = ("", 0, names) if isinstance(names, str) else names
        members_json = lists.claimed(
            room, epoch=epoch, offset=int(offset), piece=piece, count=int(count)
        )
        if members_json is None:
            logger.warning(
                "the member list of room %s changed without a new epoch; read again",
                room,
                extra={"room": room},
            )
            members_json = as_array((await self.run(MEMBERS, room)).encode())
        return Claim(
            members_json=members_json,
            count=int(count),
            noted=bool(noted),
            replaced=replaced[0] if replaced else None,
            serial=int(serial),
        )

    async def release(self, *, room: str, name: str, member: str) -> Release | None:
        # Stop refreshing first: if Redis is down now, the entry still expires.
        state = self._current()
        state.held.discard(_entry(room, name, member))
        state.lists.released(room)
        reply = await self.run(RELEASE, room, name_key(name), member, *self._diff_args)
        if reply is None:
            return None
        count, noted, serial = reply
        return Release(count=int(count), noted=bool(noted), serial=int(serial))

    async def members(self, *, room: str) -> list[str]:
        return orjson.loads(as_array((await self.run(MEMBERS, room)).encode()))

    async def counts(self) -> dict[str, int]:
        flat = await self._current().pipeline.execute("HGETALL", self.prefix + "counts")
        return {flat[i]: int(flat[i + 1]) for i in range(0, len(flat), 2)}

    async def live_members(self, *, room: str | None = None) -> list[LiveMember]:
        """Every process's members; read without starting this process's upkeep.

        A command that only looks (`manage.py chat_moderate members`) must
        not sweep: the members it found expired would never be announced.
        """
        flat = await LIVE.run(self._state.get().pipeline, self.prefix, room or "")
        found = [_live_member(flat[i], flat[i + 2], flat[i + 3]) for i in range(0, len(flat), 4)]
        return sorted(found, key=lambda live: (live.room, live.joined_at))

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
            gone += await self.run(REFRESH, ttl_ms, *held[start : start + BATCH])
        # A member released meanwhile is not evicted: it left by itself.
        evicted = [entry for entry in gone if entry in state.held]
        state.held.difference_update(evicted)
        return [_member_of(entry) for entry in evicted]

    async def sweep(self) -> list[Expired]:
        """Remove every expired member; this process alone gets each one back."""
        expired: list[Expired] = []
        while True:
            flat = await self.run(SWEEP, BATCH, *self._diff_args)
            batch = [
                Expired(
                    room=flat[i],
                    name=orjson.loads(flat[i + 1]),
                    member=flat[i + 2],
                    count=int(flat[i + 3]),
                    noted=bool(flat[i + 4]),
                    serial=int(flat[i + 5]),
                )
                for i in range(0, len(flat), 6)
            ]
            expired += batch
            if len(batch) < BATCH:
                return expired

    async def _upkeep_once(self) -> None:
        evicted = await self.refresh()
        if evicted:
            logger.warning("%d members of this process expired while connected", len(evicted))
            await self.on_evicted(evicted)
        expired = await self.sweep()
        if expired:
            logger.info("%d members of a lost process expired", len(expired))
            await self.on_expired(expired)

    async def aclose(self) -> None:
        """Stop the upkeep and the diff senders, close the connections (tests, shutdown)."""
        await self.feed.aclose()
        state = self._state.take()
        if state is None:
            return
        await stop(state.upkeep)
        await state.pipeline.aclose()
        await state.client.aclose()


def _latest_events(entries: list[str]) -> dict[str, str]:
    """Name -> its latest event, in the order of those events."""
    events: dict[str, str] = {}
    for entry in entries:
        name = orjson.loads(entry[1:])
        events.pop(name, None)
        events[name] = _MARKED_EVENTS[entry[0]]
    return events


class SharedPresenceFeed:
    """The `Feed` of every process on one Redis: sends what the registry noted.

    Coalescing in each process alone (chat.presence.memory.PresenceFeed) would let
    a room spread over P processes hear P diffs a second, and a process that
    dies with thousands of members would have its survivors announce each
    leave on its own. Instead the registry (RedisPresence) adds every
    join and leave of a large room to one list in Redis, with the claim or
    release itself, and every process that added to it runs a sender for the
    room. A sender takes the list only if no diff of the room went out in the
    last interval (a key with that expiry says when one did), so whichever
    comes first sends everybody's events in one diff, and the others find the
    list empty and stop.
    """

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
                reply = await self.presence.run(TAKE_DIFF, room, interval_ms)
            except REDIS_ERRORS as error:
                stop_if_cancelled()
                # The events stay in Redis; the next attempt sends them.
                logger.warning(
                    "presence diff of %s: Redis unavailable: %s", room, error, extra={"room": room}
                )
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
                logger.exception(
                    "could not send the presence diff of room %s", room, extra={"room": room}
                )

    async def aclose(self) -> None:
        """Stop this process's senders (tests, shutdown); what they held stays in Redis."""
        senders = list(self._senders.values())
        self._senders.clear()
        for sender in senders:
            sender.cancel()
        await asyncio.gather(*senders, return_exceptions=True)
