"""One Redis connection that many callers share: commands pipelined, replies read in order.

A pool gives each concurrent caller a connection of its own and keeps them
open once a burst has opened them: a reconnect storm left a process with up
to 16 presence connections (about 15 KiB each, docs/performance.md) and a
round trip per command. Here commands go out in call order on one
connection, those of one turn of the event loop in one write (each write
wakes redis-server, which on a shared core means a switch to it and back),
and one task reads the replies back in the same order and hands each to its
caller. Redis runs commands one at a time whatever the number of
connections, so nothing waits longer than it would behind a pool.

Every wait has a deadline. Replies are due in order, so one deadline covers
a period of reading rather than each reply: the connection is dead when a
whole `reply_timeout` passes with replies due and none read. Then every
caller still waiting gets the error, the connection is dropped, `on_lost`
hears of it, and the next command opens a new one.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .resp import Arg, pack

logger = logging.getLogger(__name__)

OnLost = Callable[[BaseException], Awaitable[None]]


async def open_connection(client: Redis, *, setup_seconds: float) -> Connection:
    """A connection with `client`'s settings, but no socket timeout, set up in `setup_seconds`.

    Not from the client's pool, and without a socket timeout: with one,
    redis-py sets a deadline around every read and wraps every write in a
    task. Whoever reads sets deadlines of its own, once per period; the
    setup (redis-py's handshake commands) gets one here, so that a Redis
    that accepts connections and never answers cannot hang it.
    """
    pool = client.connection_pool
    connection = pool.connection_class(**{**pool.connection_kwargs, "socket_timeout": None})
    try:
        async with asyncio.timeout(setup_seconds):
            await connection.connect()
    except BaseException as error:
        await connection.disconnect(nowait=True)
        if isinstance(error, TimeoutError):
            raise RedisTimeoutError("Redis did not answer a new connection in time") from None
        raise
    return connection


class RedisPipeline:
    """Commands of many callers on one connection of one event loop, replies in order.

    `execute` waits for its command's reply (or raises the error Redis
    answered, or the connection's); `send` does not wait, and an error
    answered to it counts as the connection's failure, since nobody else
    could be told. A failure also reaches `on_lost`, once per connection.
    """

    def __init__(
        self,
        connect: Callable[[], Awaitable[Connection]],
        *,
        reply_timeout: float,
        on_lost: OnLost | None = None,
        name: str = "redis",
    ) -> None:
        self._connect = connect
        self._reply_timeout = reply_timeout
        self._on_lost = on_lost
        self._name = name
        self._connection: Connection | None = None
        # Commands not yet written, packed, in call order.
        self._outbox: list[bytes] = []
        # One entry per command whose reply is still to be read, written or
        # not, in order: its caller's future, or None for a `send`.
        self._waiters: deque[asyncio.Future[Any] | None] = deque()
        # How many of those have been written (the reader reads only these).
        self._written = 0
        self._wake = asyncio.Event()
        self._replies_due = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self._connection is not None

    async def execute(self, *args: Arg) -> Any:
        """Run one command; its reply, or the error that Redis or the connection gave."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue(args, future)
        return await future

    def send(self, *args: Arg) -> None:
        """Queue one command without waiting for it (PUBLISH); errors go to `on_lost`."""
        self._queue(args, None)

    def _queue(self, args: tuple[Arg, ...], waiter: asyncio.Future[Any] | None) -> None:
        # Packed here, so that an argument Redis cannot take is the caller's error.
        self._outbox.append(pack(args))
        self._waiters.append(waiter)
        self._wake.set()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(
                self._write(), name=f"{self._name}-writer"
            )

    async def _write(self) -> None:
        """Open the connection when needed and write what was queued, a batch per wake-up."""
        connection = self._connection
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                connection = self._connection
                if connection is None:
                    connection = self._connection = await self._connect()
                    self._reader = asyncio.get_running_loop().create_task(
                        self._read(connection), name=f"{self._name}-reader"
                    )
                commands, self._outbox = self._outbox, []
                if not commands:
                    continue
                # Due before they are written: a Redis that stops reading
                # then trips the replies' deadline.
                self._written += len(commands)
                self._replies_due.set()
                await connection.send_packed_command(b"".join(commands), check_health=False)
        except asyncio.CancelledError:
            raise
        except (RedisError, OSError) as error:
            await self._fail(error, connection)

    async def _read(self, connection: Connection) -> None:
        """Read the replies in order and hand each to its caller, until the connection fails."""
        try:
            while True:
                if not self._written:
                    self._replies_due.clear()
                    await self._replies_due.wait()
                read = 0
                try:
                    async with asyncio.timeout(self._reply_timeout):
                        while self._written:
                            try:
                                reply = await connection.read_response(disconnect_on_error=False)
                            except ResponseError as error:
                                # Redis refused this command; the connection is fine.
                                reply = error
                            self._written -= 1
                            read += 1
                            self._answer(self._waiters.popleft(), reply)
                except TimeoutError:
                    if not read:
                        raise RedisTimeoutError(
                            f"no reply within {self._reply_timeout:g} s"
                        ) from None
        except asyncio.CancelledError:
            raise
        except (RedisError, OSError) as error:
            await self._fail(error, connection)

    @staticmethod
    def _answer(waiter: asyncio.Future[Any] | None, reply: Any) -> None:
        if waiter is None:
            if isinstance(reply, ResponseError):
                raise reply
            return
        if waiter.done():
            return  # its caller was cancelled; the reply was still read, in turn
        if isinstance(reply, ResponseError):
            waiter.set_exception(reply)
        else:
            waiter.set_result(reply)

    async def _fail(self, error: BaseException, connection: Connection | None) -> None:
        """Drop the connection, fail every waiting caller, tell `on_lost`.

        Once per connection: the writer and the reader can both fail on it.
        """
        if connection is not self._connection:
            return
        await self.reset(error)
        if self._on_lost is not None:
            await self._on_lost(error)

    async def reset(self, error: BaseException) -> None:
        """Forget the connection and everything queued on it; waiting callers get `error`.

        Without telling `on_lost`: for an owner that knows already (the
        subscriber lost the same Redis).
        """
        connection, self._connection = self._connection, None
        me = asyncio.current_task()
        for task in (self._writer, self._reader):
            if task is not None and task is not me:
                task.cancel()
        self._writer = self._reader = None
        waiters, self._waiters = self._waiters, deque()
        self._outbox, self._written = [], 0
        self._wake.clear()
        # One exception each: the callers raise them in tasks of their own.
        kind = type(error) if isinstance(error, RedisError) else RedisConnectionError
        for waiter in waiters:
            if waiter is not None and not waiter.done():
                waiter.set_exception(kind(f"Redis unavailable: {error}"))
        if connection is not None:
            await connection.disconnect(nowait=True)

    async def aclose(self) -> None:
        """Stop both tasks and close the connection; waiting callers get an error."""
        me = asyncio.current_task()
        tasks = [task for task in (self._writer, self._reader) if task not in (None, me)]
        await self.reset(RedisConnectionError("the connection was closed"))
        await asyncio.gather(*tasks, return_exceptions=True)
