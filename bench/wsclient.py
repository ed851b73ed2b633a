"""A lean WebSocket client for the load generator.

The generator must read frames faster than any server can relay them, on one
core, for thousands of sockets. websockets' asyncio client costs tens of µs a
frame (a reader task, a queue, an assembler); this client uses websockets'
sans-I/O protocol for the handshake and for every frame it sends, and parses
the server's frames itself (unmasked, small, text) straight into a callback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from urllib.parse import urlsplit

from websockets.client import ClientProtocol
from websockets.frames import Frame
from websockets.protocol import State
from websockets.uri import parse_uri

OnFrame = Callable[[bytes], None]

_TEXT, _CONTINUATION, _CLOSE, _PING = 0x1, 0x0, 0x8, 0x9
# Queued after the last frame once the connection is gone: `recv` raises then.
_GONE = b""


class LeanClient(asyncio.Protocol):
    """One connection. Frames go to a queue until `on_frame` is set, then to it."""

    def __init__(self, url: str) -> None:
        self.protocol = ClientProtocol(parse_uri(url), max_size=None)
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        # Frames until `listen`; None after.
        self.queue: asyncio.Queue[bytes] | None = asyncio.Queue()
        self.on_frame: OnFrame | None = None
        self._buffer = b""
        self._fragments: list[bytes] = []
        # The code of the server's close frame, once one came.
        self.close_code: int | None = None

    @classmethod
    async def connect(cls, url: str, *, within: float | None = None) -> LeanClient:
        """Connect and complete the handshake; in `within` seconds, if given.

        A connection whose handshake does not complete in time is dropped,
        not left open.
        """
        parts = urlsplit(url)
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(within):
            _, client = await loop.create_connection(lambda: cls(url), parts.hostname, parts.port)
            try:
                await client.opened
            except BaseException:
                client.abort()
                raise
        return client

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.protocol.send_request(self.protocol.connect())
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(None)
        if self.queue is not None:
            self.queue.put_nowait(_GONE)

    def data_received(self, data: bytes) -> None:
        if self.protocol.state is State.CONNECTING:
            self.protocol.receive_data(data)
            events = self.protocol.events_received()
            if self.protocol.handshake_exc is not None:
                self.opened.set_exception(self.protocol.handshake_exc)
                return
            if self.protocol.state is not State.CONNECTING and not self.opened.done():
                # Open, even if a close frame came with the answer (4503 from a
                # server that cannot reach Redis): the close is handled below.
                self.opened.set_result(None)
            for event in events:
                if isinstance(event, Frame):
                    self._handle(event.opcode.value, event.fin, bytes(event.data))
            return
        self._parse(self._buffer + data if self._buffer else data)

    # Frames from the server: never masked.

    def _parse(self, buffer: bytes) -> None:
        position, size = 0, len(buffer)
        while size - position >= 2:
            length = buffer[position + 1] & 0x7F
            header = 2
            if length == 126:
                if size - position < 4:
                    break
                length = int.from_bytes(buffer[position + 2 : position + 4], "big")
                header = 4
            elif length == 127:
                if size - position < 10:
                    break
                length = int.from_bytes(buffer[position + 2 : position + 10], "big")
                header = 10
            end = position + header + length
            if end > size:
                break
            first = buffer[position]
            self._handle(first & 0x0F, bool(first & 0x80), buffer[position + header : end])
            position = end
        self._buffer = buffer[position:]

    def _handle(self, opcode: int, fin: bool, payload: bytes) -> None:
        if opcode in (_TEXT, _CONTINUATION):
            if not fin:
                self._fragments.append(payload)
                return
            if self._fragments:
                payload = b"".join([*self._fragments, payload])
                self._fragments.clear()
            if self.on_frame is not None:
                self.on_frame(payload)
            else:
                self.queue.put_nowait(payload)
        elif opcode == _PING and self.protocol.state is State.OPEN:
            self.protocol.send_pong(payload)
            self._flush()
        elif opcode == _CLOSE:
            if self.close_code is None and len(payload) >= 2:
                self.close_code = int.from_bytes(payload[:2], "big")
            self.close()

    # Sending.

    def _flush(self) -> None:
        data = self.protocol.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(data))

    def is_open(self) -> bool:
        """Whether frames can be sent: open, and no close frame sent or received yet."""
        return self.protocol.state is State.OPEN

    def send(self, text: str) -> None:
        if self.protocol.state is not State.OPEN:
            raise ConnectionError("the connection is closed")
        self.protocol.send_text(text.encode())
        self._flush()

    async def recv(self) -> bytes:
        """The next frame before `listen`; ConnectionError once the connection is gone."""
        assert self.queue is not None, "frames go to on_frame after listen()"
        frame = await self.queue.get()
        if frame is _GONE:
            raise ConnectionError(f"closed by the server with {self.close_code}")
        return frame

    def listen(self, on_frame: OnFrame) -> None:
        """From now on hand every frame to `on_frame`; drop those still queued.

        In a room that fills up, a member queues every presence frame from
        its join until the last member's: O(N) frames each, which would stay
        in memory for as long as the room is open.
        """
        self.on_frame = on_frame
        self.queue = None

    def abort(self) -> None:
        """Drop the connection without a closing handshake, as a dead network does."""
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        """Say goodbye with 1000 and drop the socket; the server sees a clean close."""
        if self.protocol.state is State.OPEN:
            self.protocol.send_close(1000)
            self._flush()
        if self.transport is not None:
            self.transport.close()
