"""RedisPipeline against a real redis-server: one connection, replies in order, failures told."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from chat.redis.pipeline import RedisPipeline, open_connection
from chat.testing.redis_server import count_writes

pytestmark = pytest.mark.redis

DEADLINE = 10.0
REPLY_TIMEOUT = 0.5


@pytest.fixture
async def make_pipeline(redis_server) -> AsyncIterator[Callable[..., RedisPipeline]]:
    """Pipelines on the test's Redis, closed after the test; `lost` records on_lost calls."""
    made: list[tuple[RedisPipeline, redis.asyncio.Redis]] = []

    def make(
        lost: list[BaseException] | None = None, told: asyncio.Event | None = None
    ) -> RedisPipeline:
        client = redis.asyncio.Redis.from_url(redis_server.url, socket_connect_timeout=1)

        async def on_lost(error: BaseException) -> None:
            if lost is not None:
                lost.append(error)
            if told is not None:
                told.set()

        pipeline = RedisPipeline(
            functools.partial(open_connection, client, setup_seconds=REPLY_TIMEOUT * 2),
            reply_timeout=REPLY_TIMEOUT,
            on_lost=on_lost,
        )
        made.append((pipeline, client))
        return pipeline

    yield make
    for pipeline, client in made:
        await pipeline.aclose()
        await client.aclose()


async def test_concurrent_callers_share_one_connection_and_get_their_own_replies(make_pipeline):
    pipeline = make_pipeline()
    replies = await asyncio.wait_for(
        asyncio.gather(*(pipeline.execute("ECHO", f"v{n}") for n in range(200))), DEADLINE
    )
    assert replies == [f"v{n}".encode() for n in range(200)]
    clients = await pipeline.execute("CLIENT", "LIST")
    assert len(clients.splitlines()) == 1, clients


async def test_the_commands_of_one_turn_go_out_in_one_write(make_pipeline, monkeypatch):
    pipeline = make_pipeline()
    await pipeline.execute("PING")
    writes = count_writes(monkeypatch, b"ECHO")
    # Nothing between these suspends: one turn of the event loop.
    calls = [asyncio.ensure_future(pipeline.execute("ECHO", str(n))) for n in range(20)]
    assert await asyncio.gather(*calls) == [str(n).encode() for n in range(20)]
    assert writes == [20]


async def test_an_error_reply_reaches_its_caller_only(make_pipeline):
    lost: list[BaseException] = []
    pipeline = make_pipeline(lost)
    await pipeline.execute("SET", "word", "olá")
    before, refused, after = await asyncio.gather(
        pipeline.execute("ECHO", "a"),
        pipeline.execute("INCR", "word"),
        pipeline.execute("ECHO", "b"),
        return_exceptions=True,
    )
    assert (before, after) == (b"a", b"b")
    assert isinstance(refused, ResponseError)
    assert await pipeline.execute("GET", "word") == "olá".encode()
    assert lost == []


async def test_an_error_answered_to_a_send_is_the_connection_s_failure(make_pipeline):
    """Nobody waits for a send's reply: an error in it must not pass unnoticed."""
    lost: list[BaseException] = []
    told = asyncio.Event()
    pipeline = make_pipeline(lost, told)
    await pipeline.execute("SET", "word", "x")
    pipeline.send("INCR", "word")
    await asyncio.wait_for(told.wait(), DEADLINE)
    assert isinstance(lost[0], ResponseError)
    assert await pipeline.execute("ECHO", "again") == b"again"


async def test_a_cancelled_caller_does_not_shift_the_replies(make_pipeline, redis_server):
    pipeline = make_pipeline()
    await pipeline.execute("PING")
    redis_server.pause()
    try:
        abandoned = asyncio.ensure_future(pipeline.execute("ECHO", "abandoned"))
        await asyncio.sleep(0.05)
        abandoned.cancel()
        wanted = asyncio.ensure_future(pipeline.execute("ECHO", "wanted"))
        await asyncio.sleep(0.05)
    finally:
        redis_server.resume()
    assert await asyncio.wait_for(wanted, DEADLINE) == b"wanted"
    assert abandoned.cancelled()


async def test_a_silent_redis_fails_the_waiting_callers_and_is_told_once(
    make_pipeline, redis_server
):
    lost: list[BaseException] = []
    pipeline = make_pipeline(lost)
    await pipeline.execute("PING")
    redis_server.pause()
    try:
        calls = [asyncio.ensure_future(pipeline.execute("ECHO", str(n))) for n in range(3)]
        results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), DEADLINE)
    finally:
        redis_server.resume()
    assert all(isinstance(result, RedisTimeoutError) for result in results), results
    assert len(lost) == 1 and isinstance(lost[0], RedisTimeoutError)
    assert not pipeline.connected
    # The next command opens a new connection.
    assert await asyncio.wait_for(pipeline.execute("ECHO", "back"), DEADLINE) == b"back"


async def test_a_down_redis_fails_each_call_and_a_later_one_reconnects(make_pipeline, redis_server):
    lost: list[BaseException] = []
    pipeline = make_pipeline(lost)
    await pipeline.execute("PING")
    redis_server.stop()
    with pytest.raises(RedisConnectionError):
        await asyncio.wait_for(pipeline.execute("PING"), DEADLINE)
    with pytest.raises(RedisConnectionError):
        await asyncio.wait_for(pipeline.execute("PING"), DEADLINE)
    assert lost and all(isinstance(error, (RedisConnectionError, OSError)) for error in lost)
    redis_server.start()
    assert await asyncio.wait_for(pipeline.execute("ECHO", "up"), DEADLINE) == b"up"


async def test_an_argument_redis_cannot_take_is_the_callers_error_and_nothing_is_sent(
    make_pipeline,
):
    lost: list[BaseException] = []
    pipeline = make_pipeline(lost)
    await pipeline.execute("SET", "n", 1)
    with pytest.raises(TypeError):
        pipeline.send("SET", "n", 2.5)
    with pytest.raises(TypeError):
        await pipeline.execute("SET", "n", None)
    assert await pipeline.execute("GET", "n") == b"1"
    assert lost == []
