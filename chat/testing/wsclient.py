"""Helpers for tests that talk to real server processes with the `websockets` client."""

from __future__ import annotations

import asyncio
import contextlib
import json
from urllib.parse import urlsplit

import pytest
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from . import wsframes

# How long a real server gets to answer one frame (a loaded 2-core machine).
TIMEOUT = 5.0


async def recv(ws, timeout: float = TIMEOUT) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def recv_type(ws, frame_type: str, timeout: float = TIMEOUT) -> dict:
    frame = await recv(ws, timeout)
    assert frame["type"] == frame_type, frame
    return frame


async def send(ws, frame: dict) -> None:
    await ws.send(json.dumps(frame))


async def closed_code(ws, timeout: float = TIMEOUT) -> int:
    """Read until the server closes the socket; the close code the client saw."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    return closed.value.rcvd.code if closed.value.rcvd else 1006


async def close_frame(ws, timeout: float = TIMEOUT) -> tuple[int, str]:
    """Read until the server closes the socket; the close code and reason the client saw."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    received = closed.value.rcvd
    return (received.code, received.reason) if received else (1006, "")


class RawClient:
    """A client that writes any bytes and answers nothing by itself.

    websockets' sans-I/O protocol does the handshake and reads the server's
    frames; after that, nothing it would send goes out (no pong, no reply to
    the server's close), so a test can hold the client's side of a closing
    handshake open, or write frames no library would.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, url: str):
        self.reader = reader
        self.writer = writer
        self.protocol = ClientProtocol(parse_uri(url), max_size=None)
        self.frames: list[Frame] = []

    @classmethod
    async def connect(cls, url: str, timeout: float = TIMEOUT) -> RawClient:
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        client = cls(reader, writer, url)
        client.protocol.send_request(client.protocol.connect())
        writer.write(b"".join(client.protocol.data_to_send()))
        async with asyncio.timeout(timeout):
            while client.protocol.state is State.CONNECTING:
                await client._read()
        if client.protocol.state is not State.OPEN:
            raise ConnectionError(f"handshake refused: {client.protocol.handshake_exc}")
        return client

    async def _read(self) -> None:
        data = await self.reader.read(65536)
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        for event in self.protocol.events_received():
            if isinstance(event, Frame):
                self.frames.append(event)
            elif not isinstance(event, Response):
                raise AssertionError(f"unexpected event {event!r}")
        # What the protocol would answer stays unsent: this client answers nothing.
        self.protocol.data_to_send()
        if not data and not self.frames:
            raise ConnectionError("the server closed the connection")

    async def frame(self, timeout: float = TIMEOUT) -> Frame:
        """The server's next frame."""
        async with asyncio.timeout(timeout):
            while not self.frames:
                await self._read()
        return self.frames.pop(0)

    async def recv_type(self, frame_type: str, timeout: float = TIMEOUT) -> dict:
        """The next text frame, which must be JSON of `frame_type`."""
        frame = await self.frame(timeout)
        assert frame.opcode is Opcode.TEXT, frame
        content = json.loads(frame.data)
        assert content["type"] == frame_type, content
        return content

    def write(self, data: bytes) -> None:
        self.writer.write(data)

    def send(self, content: dict) -> None:
        self.write(wsframes.text(json.dumps(content)))

    async def aclose(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()
