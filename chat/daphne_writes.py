"""Under Daphne, put a WebSocket frame on the socket at once when nothing waits before it.

Twisted's `transport.write` only buffers: it asks the reactor to watch the
socket for writability (an epoll change), and the next turn of the loop
writes the buffer and stops watching (another). Daphne runs a room's
fan-out in one turn, so no member of a room of 500 had its frame until all
500 were buffered, and every frame cost two epoll changes and a turn's
callback besides the send itself: about a third of a delivery's CPU under
Daphne by cProfile, and the whole of the fan-out in every member's latency
(docs/performance.md, "Daphne's p99, profiled").

So when autobahn writes a frame on a plain TCP connection whose buffer is
empty, this sends it with Twisted's own `writeSomeData` (one `send`, as the
reactor's writer would make), and hands Twisted only what the socket did
not take, to buffer and write as before. When anything is buffered already,
or autobahn queues the frame (a chopped or synced write), or the transport
is not plain TCP (TLS), autobahn's own path runs, so frames never overtake
each other. The guard in chat/tests/test_upstream_guards.py pins the
sources this relies on. Under any other server this does nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .daphne_patch import under_daphne, wrap_once


def install() -> None:
    if not under_daphne():
        return
    from autobahn.websocket.protocol import WebSocketProtocol
    from twisted.internet.tcp import Server

    wrap_once(WebSocketProtocol, "sendData", lambda original: _sending_at_once(original, Server))


def _sending_at_once(original: Callable[..., None], plain: type) -> Callable[..., None]:
    def send_data(self: Any, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
        transport = self.transport
        if (
            sync
            or chopsize
            or self.send_queue
            or type(transport) is not plain
            or not transport.connected
            or transport.disconnecting
            or transport._writeDisconnected
            or transport.dataBuffer
            or transport._tempDataBuffer
        ):
            original(self, data, sync, chopsize)
            return
        written = transport.writeSomeData(data)
        if not isinstance(written, int):
            # The connection is lost: Twisted's writer finds out as it would have.
            original(self, data, sync, chopsize)
        elif written < len(data):
            original(self, data[written:], sync, chopsize)

    return send_data
