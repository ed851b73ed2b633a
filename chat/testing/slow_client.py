"""A WebSocket client that reads its socket only when told to, and then only so fast.

For the slow-reader tests and benchmark: a member that stops reading
entirely, or one on a slow link. It owns a plain non-blocking socket and
speaks through websockets' sans-I/O protocol, so nothing reads the socket
behind its back (the asyncio clients read into their own buffers). Its
receive buffer is set small before it connects (which also turns off the
kernel's autotuning of it), and so is its segment size: over loopback the
64 KiB segments let the server's kernel buffer megabytes for one stalled
client, where a client across the internet (1,460-byte segments) gets a
few hundred kilobytes at most.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any
from urllib.parse import urlsplit

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

# The kernel doubles it and keeps it above its own minimum.
RECEIVE_BUFFER_BYTES = 4096
# An Ethernet path's segment size, not loopback's 64 KiB.
SEGMENT_BYTES = 1460
# One read of a slow link, in bytes.
READ_CHUNK_BYTES = 512
HANDSHAKE_TIMEOUT = 10.0


class SlowClient:
    """One connection; frames arrive only while `read_for` or `read_until_closed` runs."""

    def __init__(self, url: str, sock: socket.socket) -> None:
        self.protocol = ClientProtocol(parse_uri(url), max_size=None)
        self.sock = sock
        self.loop = asyncio.get_running_loop()
        self.frames: list[dict[str, Any]] = []
        # The code of the server's close frame, once read; 1006 if the connection just ended.
        self.close_code: int | None = None
        self.bytes_read = 0

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        receive_buffer: int = RECEIVE_BUFFER_BYTES,
        segment: int = SEGMENT_BYTES,
    ) -> SlowClient:
        parts = urlsplit(url)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, segment)
        client = cls(url, sock)
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                await client.loop.sock_connect(sock, (parts.hostname, parts.port))
                client.protocol.send_request(client.protocol.connect())
                await client._flush()
                while client.protocol.state is State.CONNECTING:
                    data = await client.loop.sock_recv(sock, 65536)
                    if not data:
                        raise ConnectionError("closed during the handshake")
                    await client._received(data)
        except BaseException:
            sock.close()
            raise
        if client.protocol.handshake_exc is not None:
            sock.close()
            raise client.protocol.handshake_exc
        return client

    async def send(self, frame: dict[str, Any]) -> None:
        self.protocol.send_text(json.dumps(frame).encode())
        await self._flush()

    async def read_for(self, seconds: float, *, bytes_per_second: float | None = None) -> None:
        """Read for `seconds`: as fast as frames come, or at `bytes_per_second`; stop if closed."""
        end = time.monotonic() + seconds
        while self.close_code is None and (left := end - time.monotonic()) > 0:
            started = time.monotonic()
            try:
                async with asyncio.timeout(left):
                    data = await self.loop.sock_recv(self.sock, READ_CHUNK_BYTES)
            except TimeoutError:
                return
            await self._received(data)
            if bytes_per_second:
                pause = len(data) / bytes_per_second - (time.monotonic() - started)
                await asyncio.sleep(max(0.0, min(pause, end - time.monotonic())))

    async def read_until_closed(self, timeout: float) -> int:
        """Read everything until the connection ends; the close code (1006 without a frame)."""
        async with asyncio.timeout(timeout):
            while self.close_code is None:
                await self._received(await self.loop.sock_recv(self.sock, 65536))
        return self.close_code

    def messages(self) -> list[dict[str, Any]]:
        return [frame for frame in self.frames if frame.get("type") == "message"]

    def close(self) -> None:
        """Drop the socket (no closing handshake: the client may not be reading)."""
        self.sock.close()

    async def _received(self, data: bytes) -> None:
        """Parse what was read; answer pings (the server's keepalive) while open."""
        if not data:
            self.close_code = self.close_code or 1006
            return
        self.bytes_read += len(data)
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if not isinstance(event, Frame):
                continue
            if event.opcode is Opcode.TEXT:
                self.frames.append(json.loads(event.data))
            elif event.opcode is Opcode.CLOSE:
                self.close_code = int.from_bytes(event.data[:2], "big") if event.data else 1005
        if self.close_code is None:
            await self._flush()  # pongs

    async def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                await self.loop.sock_sendall(self.sock, data)


async def joined_member(
    url: str, name: str, *, timeout: float
) -> tuple[SlowClient, dict[str, Any]]:
    """A SlowClient that has joined as `name`, and its `joined` frame.

    It reads nothing more until told to. RuntimeError if the join is not
    answered within `timeout` seconds, or the server closes the connection.
    """
    client = await SlowClient.connect(url)
    await client.send({"type": "join", "name": name})
    deadline = time.monotonic() + timeout
    while True:
        joined = next((frame for frame in client.frames if frame.get("type") == "joined"), None)
        if joined is not None:
            return client, joined
        if time.monotonic() > deadline or client.close_code is not None:
            client.close()
            raise RuntimeError(f"{name} could not join: close code {client.close_code}")
        await client.read_for(0.1)
