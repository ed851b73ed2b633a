"""uvicorn's sans-I/O WebSocket protocol, taking a room's frames already encoded.

For every member of a room, every message would otherwise cost an ASGI
send: a coroutine that waits on the socket's writable event, frames the
text again in Python (websockets' `Frame` and its serialisation) and writes
it. The frame is the same bytes for every member (chat.frames), so this
protocol offers the application the ASGI scope extension "chat.frames", a
`write(frame) -> bool` that takes an encoded frame for the socket, or
returns False when it cannot: the handshake is not complete, the close has
begun or the socket is gone, or the transport's buffer is over its
high-water mark, where the ASGI send would wait. The caller then sends the
ordinary way, which waits or fails as it always has. A connection that
negotiated an extension (permessage-deflate: its frames differ per
connection) is not offered the write at all.

The frames a member is given in one turn of the event loop (in a busy
room, the fan-outs of several messages) go out together at the end of the
turn, in one system call instead of one each (`BatchedTransport`). Every
other write to the socket (an ASGI send, a close frame, a ping) and its
close write them first, so the socket sees every frame in the order it
was given.

One other difference from uvicorn's: a frame it refuses (over
`--ws-max-size`: 1009; malformed: 1002) is answered with the close frame
and a half-close, and what the client still sends is read and discarded
until it closes too (or `close_timeout` passes), as websockets' own server
does (RFC 6455, 7.1.7). uvicorn closes the socket at once instead, and a
client still sending the rest of a 70 KB frame gets a TCP reset, which
throws away the unread close frame: it saw 1006, not 1009. Without
compression (the README declines it) an oversized frame is 70 KB on the
wire.

Run it with `uvicorn --ws chat.uvicorn_frames:FrameWritingProtocol`
(README, "Production"); docs/performance.md has what it saves.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

from .frames import EXTENSION

# Held frames are written at once when they reach this many bytes, so that
# the transport's own high-water mark (and the pause it signals) still applies.
FLUSH_BYTES = 64 * 1024


class BatchedTransport:
    """A connection's transport, holding `hold(frame)`'s frames until the end of the turn.

    Everything else is the transport's own: a `write` (uvicorn's ASGI sends,
    close frames, pings), `write_eof` and `close` first write what is held.
    """

    __slots__ = ("_held", "_loop", "_size", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._size = 0

    def hold(self, frame: bytes) -> None:
        """Write `frame` at the end of this turn of the loop, after what is held already."""
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(frame)
        self._size += len(frame)
        if self._size >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write what is held, in one call; nothing once the transport is closing."""
        if not self._held:
            return
        held = self._held
        data = held[0] if len(held) == 1 else b"".join(held)
        held.clear()
        self._size = 0
        if not self.transport.is_closing():
            self.transport.write(data)

    def write(self, data: bytes) -> None:
        self.flush()
        self.transport.write(data)

    def write_eof(self) -> None:
        self.flush()
        self.transport.write_eof()

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def abort(self) -> None:
        self._held.clear()
        self.transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class FrameWritingProtocol(WebSocketsSansIOProtocol):
    """WebSocketsSansIOProtocol with "chat.frames" in the scope of every connection without
    an extension."""

    # Whether the transport's buffer is over its high-water mark: the
    # `writable` event's state, read here without a method call per frame.
    paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.transport = BatchedTransport(self.transport, self.loop)  # type: ignore[assignment]

    async def run_asgi(self) -> None:
        # The handshake's extensions are negotiated by now (handle_connect).
        if not self.conn.extensions:
            self.scope["extensions"][EXTENSION] = {"write": self.write_frame}
        await super().run_asgi()

    def pause_writing(self) -> None:
        self.paused = True
        super().pause_writing()

    def resume_writing(self) -> None:
        self.paused = False
        super().resume_writing()

    def data_received(self, data: bytes) -> None:
        if self.close_sent and self.conn.parser_exc is not None:
            # Refused already: websockets' parser discards what follows.
            self.conn.receive_data(data)
            return
        super().data_received(data)

    def handle_parser_exception(self) -> None:
        """uvicorn's, with a half-close and reading on in place of the close."""
        close = self.conn.close_sent
        assert close is not None
        self.queue.put_nowait(
            {"type": "websocket.disconnect", "code": close.code, "reason": close.reason}
        )
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        if self.close_timer is None:
            # The client's EOF ends it sooner (asyncio closes the transport).
            self.close_timer = self.loop.call_later(self.close_timeout, self.transport.close)

    def write_frame(self, frame: bytes) -> bool:
        """Take a whole encoded frame for the socket (written at the end of this turn of the
        loop) where the ASGI send would write it without waiting; False where it would not."""
        if (
            self.paused
            or self.close_sent
            or self.disconnected
            or not self.handshake_complete
            or self.initial_response is not None
            or self.conn.state is not State.OPEN
        ):
            return False
        self.transport.hold(frame)  # type: ignore[attr-defined]
        return True
