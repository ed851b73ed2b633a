"""Moderation over two real Daphne processes on one real Redis, from the command line."""

from __future__ import annotations

import asyncio
import json
import sys
import time

import pytest
from websockets.asyncio.client import connect as ws_connect

from chat.testing import servers
from chat.testing.wsclient import close_frame, recv_type, send

pytestmark = [pytest.mark.redis, pytest.mark.server]

# SPEC: moderation is effective in every process within 5 s.
DEADLINE = 5.0


async def command(database, redis_server, *argv: str) -> tuple[int, str, str]:
    """Run a management command as an operator does, on the servers' database and Redis."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "manage.py",
        *argv,
        cwd=servers.PROJECT_DIR,
        env=servers.server_env(database, REDIS_URL=redis_server.url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, out.decode(), err.decode()


def url(server: servers.ServerProcess, room: str = "lobby") -> str:
    return f"{server.ws_url}/websocket/ws_chat/{room}"


async def join(ws, name: str) -> dict:
    await send(ws, {"type": "join", "name": name})
    return await recv_type(ws, "joined")


async def test_members_and_a_kick_from_the_command_line_reach_the_other_process(
    daphne_pair, server_database, redis_server
):
    one, two = daphne_pair
    async with ws_connect(url(one)) as shun, ws_connect(url(two)) as ikki:
        await join(shun, "Shun")
        await join(ikki, "Ikki")
        await recv_type(shun, "presence")
        status, out, err = await command(server_database, redis_server, "chat_moderate", "members")
        assert status == 0, err
        listed = [(m["room"], m["name"], m["address"]) for m in json.loads(out)]
        assert listed == [("lobby", "Shun", "127.0.0.1"), ("lobby", "Ikki", "127.0.0.1")]

        started = time.monotonic()
        status, out, err = await command(
            server_database, redis_server, "chat_moderate", "kick", "lobby", "IKKI"
        )
        assert (status, out.strip()) == (0, "Kicked Ikki out of lobby."), err
        assert await close_frame(ikki, DEADLINE) == (4401, "")
        assert time.monotonic() - started < DEADLINE + 2  # the command's own start, too
        leave = await recv_type(shun, "presence", DEADLINE)
        assert (leave["event"], leave["name"], leave["count"]) == ("leave", "Ikki", 1)

    status, _, err = await command(
        server_database, redis_server, "chat_moderate", "kick", "lobby", "Ikki"
    )
    assert status == 1 and "Nobody called Ikki is in lobby" in err


async def test_a_ban_closes_live_members_on_every_process_and_keeps_them_out(
    daphne_pair, server_database, redis_server
):
    one, two = daphne_pair
    async with (
        ws_connect(url(one, "physics")) as on_one,
        ws_connect(url(two, "chemistry")) as on_two,
        ws_connect(url(two, "chemistry")) as bystander,
    ):
        await join(on_one, "Ikki")
        await join(on_two, "ikki")
        assert (await join(bystander, "Shun"))["members"] == ["ikki", "Shun"]
        started = time.monotonic()
        status, out, err = await command(
            server_database,
            redis_server,
            "chat_moderate",
            "ban",
            "--name",
            "IKKI",
            "--reason",
            "Spam, again",
        )
        assert status == 0 and out.strip().isdigit(), err
        for banned in (on_one, on_two):
            assert await close_frame(banned, DEADLINE) == (4451, "Spam, again")
        assert time.monotonic() - started < DEADLINE + 2
        assert (await recv_type(bystander, "presence", DEADLINE))["event"] == "leave"
        await send(bystander, {"message": "still here"})
        await send(bystander, {"type": "ping"})
        assert (await recv_type(bystander, "pong"))["type"] == "pong"
    # New connections: refused at the join, on either process.
    for server in daphne_pair:
        async with ws_connect(url(server, "biology")) as again:
            await send(again, {"type": "join", "name": "Ikki"})
            assert await close_frame(again) == (4451, "Spam, again")


async def test_an_address_ban_of_one_room_closes_it_on_every_process(
    daphne_pair, server_database, redis_server
):
    one, two = daphne_pair
    async with (
        ws_connect(url(one, "physics")) as joined,
        ws_connect(url(two, "physics")) as lurker,
        ws_connect(url(two, "lobby")) as elsewhere,
    ):
        await join(joined, "Seiya")
        await join(elsewhere, "Shiryu")
        status, _, err = await command(
            server_database,
            redis_server,
            "chat_moderate",
            "ban",
            "--address",
            "127.0.0.0/8",
            "--room",
            "physics",
            "--minutes",
            "5",
        )
        assert status == 0, err
        assert await close_frame(joined, DEADLINE) == (4451, "")
        assert await close_frame(lurker, DEADLINE) == (4451, "")
        await send(elsewhere, {"type": "ping"})
        assert (await recv_type(elsewhere, "pong"))["type"] == "pong"
    for server in daphne_pair:
        async with ws_connect(url(server, "physics")) as refused:
            # Closed at the handshake: before any frame is sent.
            assert await close_frame(refused) == (4451, "")


async def test_closing_a_room_closes_its_connections_on_every_process(
    daphne_pair, server_database, redis_server
):
    one, two = daphne_pair
    async with ws_connect(url(one, "physics")) as a, ws_connect(url(two, "physics")) as b:
        await join(a, "Seiya")
        await join(b, "Shiryu")
        status, _, err = await command(
            server_database,
            redis_server,
            "shell",
            "-c",
            "from chat.models import Room; Room.objects.create(slug='physics', is_open=False)",
        )
        assert status == 0, err
        assert (await close_frame(a, DEADLINE))[0] == 4403
        assert (await close_frame(b, DEADLINE))[0] == 4403
