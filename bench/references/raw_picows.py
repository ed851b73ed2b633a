"""Reference (c): the ceiling, the fastest relay Python does on this machine.

A bare WebSocket server on picows (a Cython WebSocket protocol on uvloop)
that writes each text frame it receives, byte for byte, to every other
connection of the sender's room. No framework, no JSON, no validation, no
presence, no limits beyond the frame size: what is left is the cost of
reading a frame and writing it N - 1 times, which every design pays.

It speaks reference (a)'s URL scheme, `/ws/<room>/<name>`, where the
handshake itself joins (bench.designs), and answers `GET /healthz` so that
the harness knows it is up.

    python -m bench.references.raw_picows --host 127.0.0.1 --port 8000
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import uvloop
from picows import (
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
    ws_create_server,
)

MAX_FRAME_BYTES = 64 * 1024
HEALTHZ = b"/healthz"
ROOM_PREFIX = b"/ws/"


class Relay:
    """The rooms: room name -> the transports of its members."""

    def __init__(self) -> None:
        self.rooms: dict[bytes, list[WSTransport]] = {}

    def listener(self, request: WSUpgradeRequest) -> Member | WSUpgradeResponseWithListener | None:
        """picows's router: a member for `/ws/<room>/<name>`, 200 for /healthz, else 404."""
        path = request.path
        if path == HEALTHZ:
            return WSUpgradeResponseWithListener(WSUpgradeResponse.create_ok_response(b"ok"), None)
        if not path.startswith(ROOM_PREFIX) or path.count(b"/") != 3:
            return None
        return Member(self, path.split(b"/")[2])


class Member(WSListener):
    """One connection: joined to its room on connect, relays its text frames to the others."""

    def __init__(self, relay: Relay, room: bytes) -> None:
        self.relay = relay
        self.room = room
        self.others: list[WSTransport] = []

    def on_ws_connected(self, transport: WSTransport) -> None:
        # Every member of a room shares the room's one list.
        self.others = self.relay.rooms.setdefault(self.room, [])
        self.others.append(transport)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is WSMsgType.TEXT:
            # Valid only during this call; each send copies it into its frame.
            payload = frame.get_payload_as_memoryview()
            for other in self.others:
                if other is not transport:
                    other.send(WSMsgType.TEXT, payload)
        elif kind is WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.others.remove(transport)
        if not self.others:
            self.relay.rooms.pop(self.room, None)


async def serve(host: str, port: int) -> None:
    relay = Relay()
    server = await ws_create_server(
        relay.listener, host, port, max_frame_size=MAX_FRAME_BYTES, logger_name="raw-relay"
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    async with server:
        await stopping.wait()
        for members in list(relay.rooms.values()):
            for transport in list(members):
                transport.send_close(WSCloseCode.SERVICE_RESTART)
                transport.disconnect()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
