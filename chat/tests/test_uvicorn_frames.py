"""chat.uvicorn_frames on a real uvicorn server, socket and client, in this process.

A small ASGI application stands in for the chat: what matters here is what
the protocol offers in the scope and what its write does to the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import uvicorn
from websockets.asyncio.client import connect
from websockets.frames import Close, Opcode

from chat import frames
from chat.testing import wsframes
from chat.testing.servers import HOST, free_port
from chat.testing.wsclient import RawClient
from chat.uvicorn_frames import FrameWritingProtocol

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
Write = Callable[[bytes], bool]


@contextlib.asynccontextmanager
async def serving(app: App, **options: Any) -> AsyncIterator[str]:
    """uvicorn serving `app` with FrameWritingProtocol on a free loopback port; its URL."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host=HOST,
        port=port,
        ws=FrameWritingProtocol,
        lifespan="off",
        log_level="warning",
        **options,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"ws://{HOST}:{port}/"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


class Accepting:
    """An application that accepts, hands its write over and waits for the client to go."""

    def __init__(self) -> None:
        self.writes: asyncio.Queue[Write | None] = asyncio.Queue()
        self.gone = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        await self.writes.put(scope["extensions"].get(frames.EXTENSION, {}).get("write"))
        await send({"type": "websocket.send", "text": "by ASGI"})
        while (await receive())["type"] != "websocket.disconnect":
            pass
        self.gone.set()


async def test_a_written_frame_reaches_the_client_between_asgi_sends():
    app = Accepting()
    async with serving(app) as url, connect(url, compression=None) as client:
        write = await app.writes.get()
        assert write is not None
        assert await client.recv() == "by ASGI"
        assert write(frames.text_frame("written")) is True
        assert write(frames.text_frame("é" * 40_000)) is True
        assert await client.recv() == "written"
        assert await client.recv() == "é" * 40_000


async def test_a_connection_with_permessage_deflate_is_offered_no_write():
    app = Accepting()
    async with serving(app) as url, connect(url) as client:
        assert client.protocol.extensions, "the client negotiated permessage-deflate"
        assert await app.writes.get() is None
        assert await client.recv() == "by ASGI"


async def test_no_write_once_the_client_has_gone():
    app = Accepting()
    async with serving(app) as url:
        async with connect(url, compression=None) as client:
            write = await app.writes.get()
            assert await client.recv() == "by ASGI"
        await asyncio.wait_for(app.gone.wait(), 10)
        assert write is not None and write(frames.text_frame("late")) is False


async def test_no_write_past_the_high_water_mark_of_a_client_that_stopped_reading():
    app = Accepting()
    async with serving(app) as url, connect(url, compression=None, max_size=None) as client:
        write = await app.writes.get()
        assert write is not None
        frame = frames.text_frame("x" * 65_536)
        # The client reads nothing: kernel buffers, then the transport's, fill up.
        taken = 0
        while write(frame):
            taken += 1
            assert taken < 2_000, "64 KiB frames kept being taken: the buffer has no bound"
        assert taken > 0
        # Reading drains it: the frames taken arrive whole, then writes are taken again.
        assert await client.recv() == "by ASGI"
        for _ in range(taken):
            assert len(await client.recv()) == 65_536
        assert write(frames.text_frame("again")) is True
        assert await client.recv() == "again"


async def test_an_oversized_frame_gets_1009_and_the_rest_of_it_no_reset():
    """The client is still sending a 70 KB frame when the server refuses it."""
    app = Accepting()
    async with serving(app, ws_max_size=65_536) as url:
        client = await RawClient.connect(url)
        assert (await client.frame()).data == b"by ASGI"
        oversized = wsframes.text("x" * 70_000)
        # The frame's 14-byte header and its first kilobyte only.
        client.write(oversized[:1_014])
        closing = await client.frame()
        assert closing.opcode is Opcode.CLOSE and Close.parse(closing.data).code == 1009
        # The server has answered: the rest of the frame is read and discarded, not reset.
        client.write(oversized[1_014:])
        await client.writer.drain()
        client.writer.write_eof()
        # The server's side ends with its FIN (b""): a reset would raise here.
        while await asyncio.wait_for(client.reader.read(65_536), 10):
            pass
        await client.aclose()
        await app.gone.wait()


class Interleaving:
    """Writes frames, sends the ASGI way between them and closes, all in one turn of the loop."""

    def __init__(self) -> None:
        self.done = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        write = scope["extensions"][frames.EXTENSION]["write"]
        assert write(frames.text_frame("1")) and write(frames.text_frame("2"))
        await send({"type": "websocket.send", "text": "3"})
        assert write(frames.text_frame("4"))
        # Bigger than a write's batch: what is held goes out first, then this.
        assert write(frames.text_frame("5" * 70_000)) and write(frames.text_frame("6"))
        await send({"type": "websocket.close", "code": 4000})
        while (await receive())["type"] != "websocket.disconnect":
            pass
        self.done.set()


async def test_written_frames_keep_their_place_among_asgi_sends_and_the_close():
    app = Interleaving()
    async with serving(app) as url, connect(url, compression=None, max_size=None) as client:
        heard = [await client.recv() for _ in range(6)]
        assert heard == ["1", "2", "3", "4", "5" * 70_000, "6"]
        await client.wait_closed()
        assert client.close_code == 4000
        await asyncio.wait_for(app.done.wait(), 10)
