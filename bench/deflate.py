"""`python -m bench.deflate`: what permessage-deflate costs the production command per connection.

Browsers offer permessage-deflate, and uvicorn accepts it unless told
`--ws-per-message-deflate false`; the load generator never offers it. This
opens `--members` websockets clients that offer it (as a browser does) to
the production command as it is, and to the same command accepting it, has
each join and hear one message (so every connection has compressed a
frame), and prints the server's RSS growth per connection; then times
websockets' compression of one message frame, the work a deflate
connection adds to every delivery (docs/performance.md, "Frames written
once for a room").
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import orjson
import psutil
from websockets.asyncio.client import connect
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode

from chat.testing.servers import ServerProcess, free_port, migrate, server_env

from .servers import uvicorn_argv

# The chat's message frame, as a member hears it.
FRAME = orjson.dumps(
    {
        "type": "message",
        "room": "lobby",
        "name": "Seiya",
        "message": "hello there, how is everyone today?",
        "id": "0d88dcb2caa6-1",
        "ts": 1796302450382,
        "offset": 1,
    }
)


def rss_per_connection(*, accept_deflate: bool, members: int) -> tuple[float, bool]:
    """KiB of server RSS per connection offering deflate; whether the server accepted it."""
    with tempfile.TemporaryDirectory() as scratch:
        env = server_env(Path(scratch) / "db.sqlite3")
        migrate(env)
        port = free_port()
        argv = uvicorn_argv("chatsite.asgi:application", port)
        if accept_deflate:
            argv[argv.index("--ws-per-message-deflate") + 1] = "true"
        server = ServerProcess(argv, env, port, Path(scratch) / "server.log").start()
        try:
            return asyncio.run(_room(server.ws_url, psutil.Process(server.process.pid), members))
        finally:
            server.stop()


async def _room(base: str, process: psutil.Process, members: int) -> tuple[float, bool]:
    """Join `members` browser-like clients, send one message to all; RSS growth per member."""
    url, origin = f"{base}/websocket/ws_chat", base.replace("ws://", "http://")
    clients = []
    try:
        first = await connect(url, origin=origin)
        clients.append(first)
        await first.send(orjson.dumps({"type": "join", "name": "m0"}).decode())
        await first.recv()
        before = process.memory_info().rss
        for index in range(1, members):
            client = await connect(url, origin=origin, max_queue=None)
            clients.append(client)
            await client.send(orjson.dumps({"type": "join", "name": f"m{index}"}).decode())
            await client.recv()
        await first.send(orjson.dumps({"type": "message", "message": "hello"}).decode())
        for client in clients[1:]:
            while orjson.loads(await client.recv())["type"] != "message":
                pass
        after = process.memory_info().rss
        return (after - before) / 1024 / (members - 1), bool(clients[-1].protocol.extensions)
    finally:
        for client in clients:
            await client.close()


def compress_seconds(count: int = 20_000) -> float:
    """Seconds websockets takes to compress the message frame once, for one connection."""
    extension = PerMessageDeflate(False, False, 12, 12, {"memLevel": 5})
    started = time.perf_counter()
    for _ in range(count):
        extension.encode(Frame(Opcode.TEXT, FRAME))
    return (time.perf_counter() - started) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=500)
    args = parser.parse_args()
    for accept in (False, True):
        kib, accepted = rss_per_connection(accept_deflate=accept, members=args.members)
        state = "accepted" if accepted else "declined"
        print(f"deflate {state}: {kib:.1f} KiB of server RSS per connection")
    print(f"compressing one {len(FRAME)}-byte message frame: {compress_seconds() * 1e6:.2f} µs")


if __name__ == "__main__":
    main()
