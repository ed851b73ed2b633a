"""Shared fixtures: WebSocket clients over the real router, fresh settings per test."""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, settings

from chat.conf import expire_config
from chat.layers.memory import ChatChannelLayer
from chat.presence import Presence, get_presence
from chat.presence.memory import LocalPresence
from chat.presence.redis import RedisPresence
from chat.testing import servers
from chat.testing.redis_server import RedisServer
from chat.tests.presence_room import Room
from chatsite.asgi import application

# Hypothesis: on a developer's machine every run tries new examples (and
# replays the failures it saved in .hypothesis/); in CI (CI set, as CI
# services do) the examples are derived from each test's name, so a run is
# reproducible and a red build is the code's doing, not the draw's. The
# machine may be busy: how long one example takes is never what a property
# is about, hence no deadline. HYPOTHESIS_PROFILE picks one by name.
settings.register_profile("dev", deadline=None)
settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)

# How long a test waits for a frame that must arrive, and how long it listens
# to prove that a frame does not arrive.
RECEIVE_TIMEOUT = 2.0
SILENCE_TIMEOUT = 0.2


class Client:
    """A WebSocket client of the chat, speaking JSON frames through the real ASGI app."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.communicator = communicator

    async def send(self, frame: dict[str, Any]) -> None:
        await self.communicator.send_json_to(frame)

    async def send_text(self, text: str) -> None:
        # send_to() refuses an empty text frame, which a real client can send.
        await self.communicator.send_input({"type": "websocket.receive", "text": text})

    async def receive(self, timeout: float = RECEIVE_TIMEOUT) -> dict[str, Any]:
        return json.loads(await self.communicator.receive_from(timeout))

    async def receive_type(
        self, frame_type: str, timeout: float = RECEIVE_TIMEOUT
    ) -> dict[str, Any]:
        """The next frame, which must be of `frame_type`."""
        frame = await self.receive(timeout)
        assert frame["type"] == frame_type, frame
        return frame

    async def assert_silent(self, timeout: float = SILENCE_TIMEOUT) -> None:
        assert await self.communicator.receive_nothing(timeout), "a frame arrived that must not"

    async def join(self, name: str) -> dict[str, Any]:
        await self.send({"type": "join", "name": name})
        return await self.receive_type("joined")

    async def error(self, frame: dict[str, Any] | str) -> dict[str, Any]:
        """Send a bad frame and return the error it earns."""
        if isinstance(frame, str):
            await self.send_text(frame)
        else:
            await self.send(frame)
        return await self.receive_type("error")

    async def closed_with(self, timeout: float = RECEIVE_TIMEOUT) -> int:
        """Wait for the server to close the socket; its close code."""
        return (await self.closed(timeout))[0]

    async def closed(self, timeout: float = RECEIVE_TIMEOUT) -> tuple[int, str]:
        """Wait for the server to close the socket; its close code and reason."""
        output = await self.communicator.receive_output(timeout)
        assert output["type"] == "websocket.close", output
        return output.get("code", 1000), output.get("reason") or ""

    async def disconnect(self) -> None:
        await self.communicator.disconnect()


ClientFactory = Callable[..., Awaitable[Client]]


@pytest.fixture(autouse=True)
def fresh_config() -> None:
    """Every test reads the settings it set, not a snapshot from an earlier test."""
    expire_config()


@pytest.fixture
async def connect(transactional_db) -> AsyncIterator[ClientFactory]:
    """Open connections through the real router; all are closed after the test,
    and the room registry must then be empty (no ghost members)."""
    opened: list[Client] = []

    async def open_client(
        path: str = "/websocket/ws_chat",
        headers: list | None = None,
        client: tuple[str, int] | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> Client:
        communicator = WebsocketCommunicator(application, path, headers=headers or [])
        if extensions is not None:
            # What a server offers beyond ASGI (chat.uvicorn_frames's "chat.frames").
            communicator.scope["extensions"] = extensions
        if client is not None:
            # The peer address a server puts in the scope (the communicator gives none).
            communicator.scope["client"] = list(client)
        connected, _ = await communicator.connect()
        assert connected, f"handshake refused for {path}"
        client = Client(communicator)
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        await client.disconnect()
    # disconnect() waits for each consumer to finish, so its leave() has run.
    assert await get_presence().counts() == {}, "members left behind after disconnect"
    layer = get_channel_layer()
    if isinstance(layer, ChatChannelLayer):
        # Nor queues or waiters of channels that nobody reads any more.
        assert (layer._queues, layer._waiters) == ({}, {}), "channels left behind"
        # Each test's rooms start at offset 0 again.
        await layer.flush()


@pytest.fixture
def server_database(tmp_path):
    """A migrated SQLite database file for server processes started by a test."""
    database = tmp_path / "chat.sqlite3"
    servers.migrate(servers.server_env(database))
    return database


@pytest.fixture
def start_server(tmp_path, server_database):
    """Start real server processes (runserver, daphne, uvicorn); all are stopped after the test.

    With `wait=False` the process is only spawned: start several, then `wait_ready()` each.
    """
    started: list[servers.ServerProcess] = []

    def start(
        kind: str = "runserver",
        port: int | None = None,
        *,
        wait: bool = True,
        args: Sequence[str] = (),
        **env: str,
    ) -> servers.ServerProcess:
        process = servers.server_process(kind, server_database, tmp_path, port, args=args, **env)
        started.append(process)
        return process.start() if wait else process.spawn()

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def redis_server(tmp_path) -> Iterator[RedisServer]:
    """A fresh redis-server on a free loopback port for this test; stopped after it."""
    server = RedisServer(tmp_path / "redis.log").start()
    yield server
    server.stop()


@pytest.fixture
def daphne_pair(start_server, redis_server) -> list[servers.ServerProcess]:
    """Two Daphne processes (what `make run` serves) on the test's Redis and database."""
    started = [start_server("daphne", wait=False, REDIS_URL=redis_server.url) for _ in range(2)]
    for process in started:
        process.wait_ready()
    return started


@pytest.fixture
def presence_ttl() -> float:
    """The Redis registries' TTL in `make_presence` and `make_registry` (a module may override)."""
    return 10.0


@contextlib.asynccontextmanager
async def closed_after(make: Callable[..., Presence]) -> AsyncIterator[Callable[..., Presence]]:
    """`make`, keeping what it made, each closed when the block ends."""
    made: list[Presence] = []

    def tracked(**options) -> Presence:
        made.append(presence := make(**options))
        return presence

    yield tracked
    for presence in made:
        await presence.aclose()


def redis_registry(url: str, default_ttl: float, **options) -> RedisPresence:
    """A registry on the test's Redis, without upkeep unless asked."""
    options.setdefault("ttl", default_ttl)
    options.setdefault("upkeep", False)
    return RedisPresence(url, **options)


@pytest.fixture
async def make_presence(redis_server, presence_ttl) -> AsyncIterator[Callable[..., RedisPresence]]:
    """Registries on the test's Redis, one per stand-in process; no upkeep unless asked."""
    async with closed_after(
        functools.partial(redis_registry, redis_server.url, presence_ttl)
    ) as make:
        yield make


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def make_registry(request, presence_ttl) -> AsyncIterator[Callable[..., Presence]]:
    """Registries of each kind, for the contract suites; each call stands in for a process.

    The options are those both backends take (`coalesce_above`, `diff_interval`).
    In-process, each registry is on its own; on Redis they all share the
    test's redis-server, as processes do, and run no upkeep.
    """
    if request.param == "redis":
        url = request.getfixturevalue("redis_server").url
        backend = functools.partial(redis_registry, url, presence_ttl)
    else:
        backend = LocalPresence
    async with closed_after(backend) as make:
        yield make


@pytest.fixture
async def open_room() -> AsyncIterator[Callable[[str], Awaitable[Room]]]:
    """Rooms that one member each listens to (chat.tests.presence_room); closed after the test."""
    opened: list[Room] = []

    async def open_one(name: str) -> Room:
        room = await Room(name).open()
        opened.append(room)
        return room

    yield open_one
    for room in opened:
        await room.close()
