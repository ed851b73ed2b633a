"""The channel layer used when REDIS_URL is set: one PUBLISH per message, fan-out in the process.

channels-redis's RedisChannelLayer writes every group event into every
member's Redis queue and reads each back with its own round trip: in a room
of N members one message costs N Redis writes and N reads, 150 to 570 µs of
CPU per delivery (docs/performance.md). Its RedisPubSubChannelLayer publishes
once, but a Redis outage is invisible to its receivers, so members would
silently miss messages. This layer keeps the cost of the first and says when
something may have been missed:

- channels and their queues live in the process, in a composed
  `ChatChannelLayer` (O(1) receive, no copy per member, `layer.overflow` on
  a full channel); a channel's name carries its process's id;
- group membership is local too: the first local member of a group
  SUBSCRIBEs this process to the group's Redis channel and the last one to
  leave UNSUBSCRIBEs. `group_send` PUBLISHes once, tagged with this
  process's id, and delivers to the local members directly; this process's
  own subscriber skips the copy it delivered already. A receiver hears one
  sender's messages through one path only (local, or one Redis connection
  in publish order), so it hears them once and in order;
- `send` to another process's channel PUBLISHes to that process's own Redis
  channel, which its subscriber reads and delivers locally;
- one subscriber task per process reads every Redis channel of the process
  from one redis-py connection in subscribed mode, reply by reply. Not
  through redis-py's PubSub: its `get_message` sets a deadline, retries and
  builds a dict for every message, and in a busy room that cost more CPU
  than the local fan-out (docs/performance.md). A deadline is set once per
  heartbeat period instead. When the connection fails, messages may have
  been published that it never read: every local channel gets a
  `layer.unavailable` event (the consumer closes with 4503 and the page
  rejoins), and the task reconnects with backoff and re-subscribes the
  groups that still have local members;
- publishes go out in call order on one connection, those of one turn of
  the event loop in one write, and their replies are read by a task, so a
  sender's handler never waits a round trip. A publish made while the
  subscriber knows Redis is down raises the Redis error to its caller; if
  the connection fails with publishes unsent or unanswered, every local
  channel hears `layer.unavailable`. Every Redis call has a deadline.

A room's chat messages go another way (the "history" extension,
SPEC "Nothing lost across a short disconnect"): `group_send_numbered` runs
one Lua script (chat/layers/lua/publish.lua) that numbers the message with
the room's next offset (HINCRBY), keeps it in the room's window (XADD to a
stream with MAXLEN, and PEXPIRE) and PUBLISHes it, as Centrifugo's Redis
broker does. Every process, the sender's included, delivers it from its
subscriber, so every member hears the room's messages in offset order;
`group_history` reads what a rejoining member missed from the stream.

Membership dies with its process, so nothing in Redis outlives it and there
is no group expiry (`group_expiry` is accepted for settings shared with
channels-redis, and not used). Events are serialised with orjson and must be
plain data: bytes, which orjson refuses, raise TypeError before anything is
sent.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from channels.exceptions import ChannelFull
from channels.layers import BaseChannelLayer
from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .. import events, metrics
from ..recovery.window import History
from ..redis.loops import Backoff, PerLoop, keep_trying, stop
from ..redis.pipeline import RedisPipeline, open_connection
from ..redis.scripts import LuaScript
from .memory import PROCESS_ID_BYTES, ChannelReader, ChatChannelLayer

logger = logging.getLogger(__name__)

DEFAULT_PREFIX = "chat:layer:"
# Redis commands here never block in Redis, so an answer slower than this
# means a dead connection; a down Redis must fail a connect quickly, so
# members get 4503 and /healthz its 503 instead of waiting.
SOCKET_TIMEOUT_SECONDS = 5.0
CONNECT_TIMEOUT_SECONDS = 2.0
# The subscriber reads without the socket timeout, so that an idle process
# does not mistake silence for a dead connection (the trap of redis-py's 5 s
# default). A connection that was quiet for HEARTBEAT_SECONDS is pinged, and
# counted dead when nothing, not even the PONG, comes within
# SOCKET_TIMEOUT_SECONDS: a silently broken connection is found in seconds.
HEARTBEAT_SECONDS = 5.0
# A group_add waits at most this long for Redis to confirm the subscription.
SUBSCRIBE_TIMEOUT_SECONDS = 5.0
# Reconnect backoff: quick for a blip, at most this slow during an outage.
BACKOFF_MIN_SECONDS = 0.1
BACKOFF_MAX_SECONDS = 2.0
# A room's epoch and latest offset outlive its window (a quiet room keeps
# counting from where it was); forgotten after a day without a message or a join.
POSITION_TTL_MS = 86_400_000

LUA = Path(__file__).with_name("lua")
PUBLISH = LuaScript.load(LUA, "publish")
HISTORY = LuaScript.load(LUA, "history")
# Loaded on the publishing connection when it opens, so that a message's
# EVALSHA, which nobody waits for, never meets NOSCRIPT.
SCRIPTS = (PUBLISH, HISTORY)
# A numbered event on a group's Redis channel: "#<offset> <event without text>\n<text>".
NUMBERED = b"#"


def channel_process(channel: str) -> str:
    """The id of the process that owns `channel`: `<prefix><process id>!<n>`."""
    head, bang, _ = channel.partition("!")
    if not bang:
        raise ValueError(f"{channel!r} is not a channel of this layer (no '!')")
    return head[-2 * PROCESS_ID_BYTES :]


@dataclass(eq=False)
class _Connection:
    """What belongs to one event loop: the clients and the subscriber task."""

    loop: asyncio.AbstractEventLoop
    client: Redis
    subscriber: asyncio.Task[None] | None = None
    # The subscriber's connection, in subscribed mode.
    listener: Connection | None = None
    # Redis channel -> futures of the SUBSCRIBEs sent and not yet confirmed, in order.
    inflight: dict[bytes, deque[asyncio.Future[None]]] = field(default_factory=dict)
    # Redis channel -> the future its latest SUBSCRIBE resolves (done: subscribed).
    ready: dict[bytes, asyncio.Future[None]] = field(default_factory=dict)
    # True once the subscriber's connection takes SUBSCRIBE commands.
    accepting: bool = False
    # Set while Redis has confirmed this process's own channel on a live connection.
    up: asyncio.Event = field(default_factory=asyncio.Event)
    # Why the last connection attempt failed, while Redis is unavailable.
    failure: BaseException | None = None
    # The one connection that publishes, set right after this is made.
    publisher: RedisPipeline = field(init=False)
    # Held while deciding on and sending SUBSCRIBE and UNSUBSCRIBE commands,
    # so that they reach Redis in the order they were decided.
    commands: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Set once the first connection attempt has succeeded or failed.
    tried: asyncio.Event = field(default_factory=asyncio.Event)


class ChatRedisChannelLayer(BaseChannelLayer):
    """Local channels and groups, relayed between processes by Redis pub/sub."""

    # "receiver": read a channel through `receiver(channel)` (chat.dispatch);
    # "roundtrip": the health probe through Redis and back (chat.health);
    # "history": numbered messages and the recovery window (chat.layers.memory's).
    extensions = ["groups", "flush", "receiver", "roundtrip", "history"]

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        prefix: str = DEFAULT_PREFIX,
        expiry: int = 60,
        group_expiry: int = 86400,
        capacity: int = 100,
        channel_capacity: dict | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(expiry=expiry, capacity=capacity, channel_capacity=channel_capacity)
        self.url = url
        self.prefix = prefix
        self.group_expiry = group_expiry
        self.local = ChatChannelLayer(
            expiry=expiry, capacity=capacity, channel_capacity=channel_capacity
        )
        self.process_id = self.local.process_id
        self._origin = self.process_id.encode()
        self._inbox = self._redis_channel("process", self.process_id)
        self._conn = PerLoop(self._make_connection)
        self._epochs = itertools.count(1)
        metrics.watch_redis(self.redis_up)

    # Names.

    def _redis_channel(self, kind: str, name: str) -> bytes:
        return f"{self.prefix}{kind}:{name}".encode()

    def _group_channel(self, group: str) -> bytes:
        return self._redis_channel("group", group)

    def _window_keys(self, group: str) -> tuple[str, str]:
        return f"{self.prefix}window:{group}", f"{self.prefix}stream:{group}"

    def _new_epoch(self) -> str:
        """An epoch for a room's new run of offsets, should the script need one."""
        return f"{self.process_id}-{next(self._epochs):x}"

    def _is_local(self, channel: str) -> bool:
        return channel_process(channel) == self.process_id

    # Channels.

    async def new_channel(self, prefix: str = "specific.") -> str:
        """A channel of this process; a Redis error while the layer cannot reach Redis.

        A connection that opens during an outage would hear nothing from the
        other processes; failing here closes it with 4503 like the rest.
        """
        conn = self._current()
        if conn.failure is not None:
            raise RedisConnectionError(f"Redis unavailable: {conn.failure}")
        return await self.local.new_channel(prefix)

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        """Queue an event for a channel of this process, or publish it to the channel's process."""
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        if self._is_local(channel):
            await self.local.send(channel, message)
            return
        payload = orjson.dumps([channel, message])
        target = self._redis_channel("process", channel_process(channel))
        self._publish(self._current(), target, payload)

    def receive(self, channel: str) -> Awaitable[dict[str, Any]]:
        """The channel's next event; only a channel of this process can be read.

        A plain function returning the local layer's coroutine, awaited as
        Channels awaits any layer's `receive`: a coroutine of our own around
        it would add a frame to every event (`new_channel` has started the
        subscriber already).
        """
        self._check_local(channel)
        return self.local.receive(channel)

    def receiver(self, channel: str) -> ChannelReader:
        """The local layer's reader of one channel, checked once (chat.dispatch reads through it).

        Every member reads once per event of its room: the local reader
        without this layer's check in front saves a call per event.
        """
        self._check_local(channel)
        return self.local.receiver(channel)

    def _check_local(self, channel: str) -> None:
        if not self._is_local(channel):
            raise ValueError(f"{channel} belongs to another process")

    # Groups.

    async def group_add(self, group: str, channel: str) -> None:
        """Add a local channel; the process subscribes to the group on its first member."""
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        if not self._is_local(channel):
            raise ValueError(f"{channel} belongs to another process: membership is local")
        conn = self._current()
        await self.local.group_add(group, channel)
        redis_channel = self._group_channel(group)
        async with conn.commands:
            ready = conn.ready.get(redis_channel)
            if ready is None:
                ready = await self._subscribe(conn, redis_channel)
        if ready.done():
            # The room's subscription stands: every member after the first.
            ready.result()
            return
        try:
            await asyncio.wait_for(asyncio.shield(ready), SUBSCRIBE_TIMEOUT_SECONDS)
        except TimeoutError:
            raise RedisTimeoutError(f"Redis did not confirm the subscription to {group}") from None

    async def group_discard(self, group: str, channel: str) -> None:
        """Remove a channel; the last local member leaving unsubscribes the process."""
        await self.local.group_discard(group, channel)
        if self.local.has_group(group) or self._conn.current is None:
            return
        conn = self._current()
        redis_channel = self._group_channel(group)
        async with conn.commands:
            # Decided under the lock: a member joining meanwhile subscribes after this.
            if self.local.has_group(group):
                return
            if conn.ready.pop(redis_channel, None) is not None and conn.accepting:
                assert conn.listener is not None
                await self._command(conn.listener, "UNSUBSCRIBE", redis_channel)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """Publish once for every other process, then deliver to the local members.

        In this order, an event that cannot be encoded or published reaches
        nobody and its error reaches the caller.
        """
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_group_name(group)
        payload = self._origin + b" " + orjson.dumps(message)
        self._publish(self._current(), self._group_channel(group), payload)
        await self.local.group_send(group, message)

    async def group_send_numbered(
        self, group: str, message: dict[str, Any], *, keep: int, seconds: float
    ) -> None:
        """Number, keep and publish a message event in one script; every process delivers it.

        Not delivered locally now: this process's subscriber delivers it
        with everyone else's, in the room's offset order. The caller does
        not wait for Redis (see `_publish`); its sender hears it back.
        """
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_group_name(group)
        conn = self._current()
        if conn.failure is not None:
            raise RedisConnectionError(f"Redis unavailable: {conn.failure}")
        head = {key: value for key, value in message.items() if key != "text"}
        meta, stream = self._window_keys(group)
        conn.publisher.send(
            "EVALSHA",
            PUBLISH.sha,
            0,
            meta,
            stream,
            self._group_channel(group),
            orjson.dumps(head),
            message["text"],
            keep,
            int(seconds * 1000),
            self._new_epoch(),
            POSITION_TTL_MS,
        )

    async def group_position(self, group: str) -> History:
        """The group's epoch and latest offset, from Redis (`texts` empty)."""
        reply = await self._history(group, after=-1, seconds=0)
        return History(_text(reply[0]), int(reply[1]), ())

    async def group_history(self, group: str, *, after: int, keep: int, seconds: float) -> History:
        """The group's messages after `after` from its stream; None for them if some are gone.

        `keep` is the script's business when messages are added (MAXLEN).
        """
        reply = await self._history(group, after=after, seconds=seconds)
        epoch, top = _text(reply[0]), int(reply[1])
        if not int(reply[2]):
            return History(epoch, top, None)
        return History(epoch, top, tuple(_text(text) for text in reply[3:]))

    async def _history(self, group: str, *, after: int, seconds: float) -> list[Any]:
        self.require_valid_group_name(group)
        conn = self._current()
        if conn.failure is not None:
            raise RedisConnectionError(f"Redis unavailable: {conn.failure}")
        meta, stream = self._window_keys(group)
        return await conn.publisher.execute(
            "EVALSHA",
            HISTORY.sha,
            0,
            meta,
            stream,
            after,
            int(seconds * 1000),
            self._new_epoch(),
            POSITION_TTL_MS,
        )

    def notify_all(self, message: dict[str, Any]) -> int:
        """Give `message` to every channel of this process; the number reached.

        Local only, as chat.layers.memory's: each process tells its own
        connections (chat.moderation.watch).
        """
        return self.local.notify_all(message)

    # Health.

    def redis_up(self) -> bool:
        """Whether the subscriber holds a live, confirmed connection to Redis (chat_redis_up).

        Plain reads, safe from the thread that serves /metrics.
        """
        conn = self._conn.current
        return conn is not None and conn.failure is None and conn.up.is_set()

    async def roundtrip(self) -> None:
        """Send an event to this process through Redis and read it back (the health probe)."""
        conn = self._current()
        await conn.tried.wait()
        if conn.failure is not None or not conn.up.is_set():
            raise RedisConnectionError(f"the subscriber cannot reach Redis: {conn.failure}")
        channel = await self.local.new_channel("healthz.")
        self._publish(conn, self._inbox, orjson.dumps([channel, {"type": "healthz.probe"}]))
        message = await self.local.receive(channel)
        if message.get("type") != "healthz.probe":
            raise RuntimeError("the channel layer returned another message than the one sent")

    # Publishing.

    def _publish(self, conn: _Connection, redis_channel: bytes, payload: bytes) -> None:
        """Queue a PUBLISH on this process's one publishing connection, in call order.

        The caller does not wait for Redis: a sender's handler that waited
        a round trip would let its own queue of room events grow by a whole
        room's traffic meanwhile (and overflow in a busy room). The pipeline
        sends the commands of one turn of the event loop in one write and
        reads the replies in a task of its own (chat.redis.pipeline). A
        publish raises only when Redis is known to be unreachable; if the
        connection fails, every local channel hears `layer.unavailable`
        (`_publisher_lost`).
        """
        if conn.failure is not None:
            # The subscriber cannot reach Redis: neither could this.
            raise RedisConnectionError(f"Redis unavailable: {conn.failure}")
        conn.publisher.send("PUBLISH", redis_channel, payload)

    async def _publisher_lost(self, error: BaseException) -> None:
        """The publishing connection failed: what it sent may not have reached Redis."""
        reached = self.local.notify_all({"type": events.UNAVAILABLE})
        logger.warning(
            "channel layer could not publish (%s: %s); told %d local channels",
            type(error).__name__,
            error,
            reached,
        )

    # The connection of this event loop, and its subscriber.

    @staticmethod
    async def _connect(conn: _Connection) -> Connection:
        """A connection of its own for the subscriber, not from the pool (chat.redis.pipeline)."""
        return await open_connection(
            conn.client, setup_seconds=CONNECT_TIMEOUT_SECONDS + SOCKET_TIMEOUT_SECONDS
        )

    async def _connect_publisher(self, conn: _Connection) -> Connection:
        """The publishing connection, its scripts loaded (a restarted Redis has none)."""
        connection = await self._connect(conn)
        try:
            async with asyncio.timeout(SOCKET_TIMEOUT_SECONDS):
                for script in SCRIPTS:
                    await connection.send_command(
                        "SCRIPT", "LOAD", script.source, check_health=False
                    )
                    await connection.read_response()
        except BaseException:
            await connection.disconnect(nowait=True)
            raise
        return connection

    def _make_connection(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        # Its pool is never used: it holds the settings of the two
        # connections per process, the subscriber's and the publisher's.
        client = Redis.from_url(
            self.url,
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
            socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
            # No silent retry: a command that failed may or may not have
            # reached Redis, and a PUBLISH sent twice would be delivered twice.
            retry=Retry(NoBackoff(), 0),
        )
        conn = _Connection(loop=loop, client=client)
        conn.publisher = RedisPipeline(
            functools.partial(self._connect_publisher, conn),
            reply_timeout=SOCKET_TIMEOUT_SECONDS,
            on_lost=self._publisher_lost,
            name="chat-layer-publish",
        )
        return conn

    def _current(self) -> _Connection:
        """This loop's connection, its subscriber running."""
        conn = self._conn.get()
        if conn.subscriber is None or conn.subscriber.done():
            subscriber = self._subscribe_forever(conn)
            conn.subscriber = conn.loop.create_task(subscriber, name="chat-layer")
        return conn

    async def _subscribe(self, conn: _Connection, redis_channel: bytes) -> asyncio.Future[None]:
        """Ask for a subscription (holding `conn.commands`); done once Redis confirms it."""
        if not conn.accepting and conn.failure is not None:
            # Down now: fail at once rather than wait; the members' consumers
            # close with 4503 and rejoin when Redis is back.
            raise RedisConnectionError(f"Redis unavailable: {conn.failure}")
        ready = conn.loop.create_future()
        conn.ready[redis_channel] = ready
        if conn.accepting:
            assert conn.listener is not None
            conn.inflight.setdefault(redis_channel, deque()).append(ready)
            try:
                await self._command(conn.listener, "SUBSCRIBE", redis_channel)
            except BaseException:
                conn.ready.pop(redis_channel, None)
                raise
        # Otherwise the subscriber is connecting: it subscribes every group
        # with local members, this one included, once it holds the lock.
        return ready

    async def _subscribe_forever(self, conn: _Connection) -> None:
        """Read Redis for this process until cancelled; reconnect with backoff after a failure."""
        backoff = Backoff(first=BACKOFF_MIN_SECONDS, most=BACKOFF_MAX_SECONDS)

        async def lost(error: BaseException) -> None:
            if await self._lost(conn, error):
                backoff.reset()  # the first failure of an outage: retry soon

        await keep_trying(
            functools.partial(self._serve, conn),
            what="channel layer subscriber",
            pause=backoff.next,
            on_failure=lost,
        )

    async def _serve(self, conn: _Connection) -> None:
        """One connection's life: subscribe this process's channels, then read until it fails."""
        listener = await self._connect(conn)
        conn.listener = listener
        try:
            # Under the lock, so that no group_add or group_discard slips
            # between deciding what to subscribe and subscribing it.
            async with conn.commands:
                # Every group with local members, including those whose group_add waits.
                wanted = [self._group_channel(group) for group in self.local.groups()]
                for redis_channel in wanted:
                    future = conn.ready.get(redis_channel)
                    if future is None or future.done():
                        future = conn.ready[redis_channel] = conn.loop.create_future()
                    conn.inflight.setdefault(redis_channel, deque()).append(future)
                await self._command(listener, "SUBSCRIBE", self._inbox, *wanted)
                conn.accepting = True
            await self._read(conn, listener, first=self._inbox)
        finally:
            conn.accepting = False
            conn.up.clear()
            conn.listener = None
            await listener.disconnect(nowait=True)

    async def _read(self, conn: _Connection, listener: Connection, *, first: bytes) -> None:
        """Dispatch every message until the connection fails (it raises then).

        The deadline is set once per heartbeat period, not once per read: when
        it passes, a connection that delivered anything meanwhile is alive;
        one that did not is pinged, and is dead if the next period is silent too.
        """
        heard = 0
        checked = -1
        pinged = False
        while True:
            try:
                async with asyncio.timeout(SOCKET_TIMEOUT_SECONDS if pinged else HEARTBEAT_SECONDS):
                    while True:
                        # Not disconnected when the deadline cancels the read:
                        # what was received stays in the reply parser.
                        reply = await listener.read_response(disconnect_on_error=False)
                        heard += 1
                        kind = reply[0]
                        if kind == b"message":
                            await self._dispatch(reply[1], reply[2])
                        elif kind == b"subscribe":
                            self._confirmed(conn, reply[1])
                            if reply[1] == first:
                                self._available(conn)
            except TimeoutError:
                if heard != checked:
                    checked, pinged = heard, False
                elif pinged:
                    raise RedisTimeoutError(
                        f"no reply to PING within {SOCKET_TIMEOUT_SECONDS:g} s"
                    ) from None
                else:
                    await self._command(listener, "PING")
                    pinged = True

    def _available(self, conn: _Connection) -> None:
        """Redis confirmed this process's own channel: the layer works (again)."""
        if conn.failure is not None:
            logger.warning("channel layer: Redis is available again")
        conn.failure = None
        conn.up.set()
        conn.tried.set()

    @staticmethod
    async def _command(connection: Connection, *args: bytes | str) -> None:
        """Write a command whose reply the subscriber reads (SUBSCRIBE, UNSUBSCRIBE, PING)."""
        # No health check: redis-py's would read a reply meant for the subscriber.
        await connection.send_command(*args, check_health=False)

    def _confirmed(self, conn: _Connection, redis_channel: bytes) -> None:
        futures = conn.inflight.get(redis_channel)
        if not futures:
            return
        future = futures.popleft()
        if not futures:
            del conn.inflight[redis_channel]
        if not future.done():
            future.set_result(None)

    async def _dispatch(self, redis_channel: bytes, data: bytes) -> None:
        """Deliver one published event to its local channel or group members."""
        if redis_channel == self._inbox:
            channel, message = orjson.loads(data)
            try:
                await self.local.send(channel, message)
            except ChannelFull:
                # The sender is in another process and cannot be told.
                logger.warning(
                    "channel %s is full: dropped a %s event",
                    channel,
                    message["type"],
                    extra={"channel": channel},
                )
            return
        group = redis_channel[len(self.prefix) + len("group:") :].decode()
        if data[:1] == NUMBERED:
            # A room's message, numbered by publish.lua: every process delivers it here.
            space = data.index(b" ")
            newline = data.index(b"\n", space)
            event = orjson.loads(data[space + 1 : newline])
            event["offset"] = int(data[1:space])
            event["text"] = data[newline + 1 :].decode()
            await self.local.group_send(group, event)
            return
        origin, _, body = data.partition(b" ")
        if origin == self._origin:
            return  # delivered locally when it was sent
        await self.local.group_send(group, orjson.loads(body))

    async def _lost(self, conn: _Connection, error: BaseException) -> bool:
        """The subscriber's connection failed: tell every local channel, fail waiting joins.

        Whether it had been working (the first failure of an outage).
        """
        was_up = conn.failure is None
        conn.failure = error
        conn.tried.set()
        # The same outage: its publishing connection is dead or stale too.
        await conn.publisher.reset(error)
        for futures in conn.inflight.values():
            for future in futures:
                if not future.done():
                    future.set_exception(RedisConnectionError(f"Redis unavailable: {error}"))
                    # Retrieved here so that an unawaited one is not reported.
                    future.exception()
        conn.inflight.clear()
        conn.ready.clear()
        if was_up:
            reached = self.local.notify_all({"type": events.UNAVAILABLE})
            logger.warning(
                "channel layer lost Redis (%s: %s); told %d local channels",
                type(error).__name__,
                error,
                reached,
            )
        return was_up

    # Maintenance.

    async def flush(self) -> None:
        """Forget every local channel and group and their subscriptions (tests)."""
        groups = self.local.groups()
        await self.local.flush()
        conn = self._conn.current
        if conn is None or not groups:
            return
        async with conn.commands:
            redis_channels = [self._group_channel(group) for group in groups]
            for redis_channel in redis_channels:
                conn.ready.pop(redis_channel, None)
            if conn.listener is not None and conn.accepting:
                await self._command(conn.listener, "UNSUBSCRIBE", *redis_channels)

    async def close(self) -> None:
        """Stop the subscriber and close the connections (tests, shutdown)."""
        conn = self._conn.take()
        if conn is None:
            return
        await stop(conn.subscriber)
        await conn.publisher.aclose()
        await conn.client.aclose()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
