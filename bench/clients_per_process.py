"""Roughly how many chat clients one server process holds, on loopback only.

    .venv/bin/python bench/clients_per_process.py [--steps 100,200,400,800] [--room-size 50]

Starts a throwaway redis-server and one Daphne process on free loopback
ports (a fresh SQLite database in a temporary folder), then, step by step,
opens that many WebSocket clients, joins them in rooms of `--room-size`,
lets one member of every room say one message, and measures how long the
joins took, how long until every member heard its room's message, and the
server's resident memory. Bounded: a fixed list of steps, each wait has a
deadline, and a step that fails stops the run. The clients run on the same
machine and share its cores with the server, so the figures are a floor.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from websockets.asyncio.client import connect

from chat.testing import servers
from chat.testing.redis_server import RedisServer

# Every wait of a step ends by then; a slower step counts as failed.
STEP_DEADLINE_SECONDS = 120.0
# Connections opened at once; more only measures the client's own queueing.
CONNECT_CONCURRENCY = 50


def rss_mib(pid: int) -> float:
    """Resident memory of one process."""
    status = Path(f"/proc/{pid}/status").read_text()
    kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    return round(kib / 1024, 1)


async def open_member(url: str, room: str, name: str, gate: asyncio.Semaphore):
    async with gate:
        ws = await connect(f"{url}/websocket/ws_chat/{room}", max_queue=None)
        await ws.send(json.dumps({"type": "join", "name": name}))
        while (frame := json.loads(await ws.recv()))["type"] != "joined":
            pass
        return ws, len(frame["members"])


async def hear_full_room(ws, size: int, seen_on_join: int) -> None:
    """Read presence frames until this member has heard the room fill up."""
    while seen_on_join < size:
        frame = json.loads(await ws.recv())
        if frame["type"] == "presence" and frame["count"] == size:
            return


async def hear_message(ws) -> None:
    while json.loads(await ws.recv())["type"] != "message":
        pass


async def step(server: servers.ServerProcess, clients: int, room_size: int) -> dict:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    start = time.perf_counter()
    opened = await asyncio.gather(
        *(
            open_member(server.ws_url, f"load{i // room_size}", f"m{i}", gate)
            for i in range(clients)
        )
    )
    try:
        rooms = [opened[i : i + room_size] for i in range(0, clients, room_size)]
        await asyncio.gather(
            *(hear_full_room(ws, len(room), seen) for room in rooms for ws, seen in room)
        )
        joined = time.perf_counter() - start
        start = time.perf_counter()
        for room in rooms:
            await room[0][0].send(json.dumps({"message": "hello"}))
        await asyncio.gather(*(hear_message(ws) for room in rooms for ws, _ in room[1:]))
        heard = time.perf_counter() - start
        rss = rss_mib(server.process.pid)
    finally:
        await asyncio.gather(*(ws.close() for ws, _ in opened))
    return {
        "clients": clients,
        "join_storm_settled_s": round(joined, 2),
        "fan_out_s": round(heard, 2),
        "server_rss_mib": rss,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", default="100,200,400,800")
    parser.add_argument("--room-size", type=int, default=50)
    parser.add_argument("--layer", choices=["redis", "memory"], default="redis")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        redis_server = RedisServer(folder / "redis.log").start()
        env = servers.server_env(folder / "chat.sqlite3", CHAT_LOG_LEVEL="WARNING")
        if args.layer == "redis":
            env["REDIS_URL"] = redis_server.url
        servers.migrate(env)
        port = servers.free_port()
        try:
            for clients in (int(n) for n in args.steps.split(",")):
                # A fresh process per step: the last step's leaves are not in this one.
                with servers.ServerProcess(
                    servers.command("daphne", port), env, port, folder / "daphne.log"
                ) as daphne:
                    idle = rss_mib(daphne.process.pid)
                    try:
                        result = await asyncio.wait_for(
                            step(daphne, clients, args.room_size), STEP_DEADLINE_SECONDS
                        )
                    except (TimeoutError, OSError) as error:
                        print(f"{clients} clients: failed ({type(error).__name__}: {error})")
                        break
                print({**result, "idle_rss_mib": idle})
        finally:
            redis_server.stop()


if __name__ == "__main__":
    asyncio.run(main())
