"""The chat over real sockets, under every server the README names."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from chat.testing import servers, wsframes
from chat.testing.wsclient import RawClient, close_frame, closed_code, recv, recv_type

pytestmark = pytest.mark.server

SERVERS = ["runserver", "daphne", "uvicorn"]


@pytest.mark.parametrize("kind", SERVERS)
async def test_two_clients_chat(start_server, kind):
    server = start_server(kind)
    url = f"{server.ws_url}/websocket/ws_chat"
    async with ws_connect(url) as shiryu, ws_connect(url, origin=server.base_url) as seiya:
        await shiryu.send(json.dumps({"type": "join", "name": "Shiryu"}))
        await recv_type(shiryu, "joined")
        await seiya.send(json.dumps({"name": "Seiya", "message": "Olá"}))
        assert (await recv_type(seiya, "joined"))["members"] == ["Shiryu", "Seiya"]
        assert (await recv_type(shiryu, "presence"))["name"] == "Seiya"
        assert (await recv_type(shiryu, "message"))["message"] == "Olá"
        await shiryu.send(json.dumps({"message": "Oi", "client_id": "1"}))
        assert (await recv_type(shiryu, "ack"))["client_id"] == "1"
        assert (await recv_type(seiya, "message"))["name"] == "Shiryu"


@pytest.mark.parametrize("kind", SERVERS)
async def test_oversized_frame_closes_with_1009_and_64k_is_fine(start_server, kind):
    server = start_server(kind)
    url = f"{server.ws_url}/websocket/ws_chat"
    async with ws_connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "join", "name": "Big"}))
        await recv_type(ws, "joined")
        exactly = '{"message": "' + "x" * (64 * 1024 - 15) + '"}'
        assert len(exactly.encode()) == 64 * 1024
        await ws.send(exactly)
        assert (await recv_type(ws, "error"))["code"] == "message_too_long"
        await ws.send('{"message": "' + "x" * (64 * 1024 - 14) + '"}')
        assert await closed_code(ws) == 1009


@pytest.mark.parametrize("kind", SERVERS)
async def test_room_traffic_for_a_socket_the_server_is_closing_is_dropped(start_server, kind):
    """The server closed a member's socket (1009) and waits for the client's
    answer; the chat hears of it only then. Room messages for the member in
    between are dropped: under Daphne, sending them raised autobahn's
    Disconnected, which ended the consumer with a traceback in the log and
    left its close uncounted (found by `make fuzz`)."""
    server = start_server(kind, CHAT_METRICS_TOKEN="token")
    url = f"{server.ws_url}/websocket/ws_chat"
    async with ws_connect(url) as watcher:
        await watcher.send(json.dumps({"type": "join", "name": "Watcher"}))
        await recv_type(watcher, "joined")
        member = await RawClient.connect(url)
        try:
            member.send({"type": "join", "name": "Member"})
            await member.recv_type("joined")
            await recv_type(watcher, "presence")
            member.write(wsframes.text("x" * (64 * 1024 + 1)))
            close = await member.frame()
            assert (close.opcode, int.from_bytes(close.data[:2])) == (wsframes.CLOSE, 1009)
            heard = []
            for turn in range(3):
                await watcher.send(json.dumps({"message": f"there? {turn}", "client_id": "w"}))
                # uvicorn tells the chat of its own close at once: the leave may come first.
                while (frame := await recv(watcher))["type"] != "ack":
                    heard.append(frame)
            member.write(wsframes.close(1009))
        finally:
            await member.aclose()
        leave = heard.pop() if heard else await recv_type(watcher, "presence")
        assert (leave["type"], leave["event"], leave["name"]) == ("presence", "leave", "Member")
        assert not heard
    # Counted once the chat has read the disconnect; never, if the consumer died first.
    deadline = time.monotonic() + 10
    while (samples := server.scrape("token")).get("chat_closes_total{code=1009}") != 1:
        assert time.monotonic() < deadline, samples
        await asyncio.sleep(0.05)
    assert "Traceback" not in server.log()


@pytest.mark.parametrize("kind", SERVERS)
async def test_foreign_origin_refused_missing_origin_accepted(start_server, kind):
    server = start_server(kind)
    url = f"{server.ws_url}/websocket/ws_chat"
    with pytest.raises(InvalidStatus) as refused:
        async with ws_connect(url, origin="http://evil.example"):
            pass
    assert refused.value.response.status_code == 403
    async with ws_connect(url) as ws:
        await ws.send(json.dumps({"type": "ping"}))
        assert await recv(ws) == {"type": "pong"}


async def test_bad_room_refused_at_handshake(start_server):
    server = start_server("daphne")
    with pytest.raises(InvalidStatus):
        async with ws_connect(f"{server.ws_url}/websocket/ws_chat/No_Caps"):
            pass


@pytest.mark.parametrize("kind", SERVERS)
async def test_dropped_connection_frees_its_name(start_server, kind):
    server = start_server(kind)
    url = f"{server.ws_url}/websocket/ws_chat"
    async with ws_connect(url) as watcher:
        await watcher.send(json.dumps({"type": "join", "name": "Watcher"}))
        await recv_type(watcher, "joined")
        ghost = await ws_connect(url)
        await ghost.send(json.dumps({"type": "join", "name": "Ghost"}))
        await recv_type(ghost, "joined")
        await recv_type(watcher, "presence")
        # Room traffic is in flight for the member when its TCP connection dies.
        await watcher.send(json.dumps({"message": "still there?"}))
        ghost.transport.abort()
        leave = await recv_type(watcher, "presence")
        assert (leave["event"], leave["name"], leave["count"]) == ("leave", "Ghost", 1)
        async with ws_connect(url) as again:
            await again.send(json.dumps({"type": "join", "name": "ghost"}))
            assert (await recv_type(again, "joined"))["members"] == ["Watcher", "ghost"]


@pytest.mark.parametrize("kind", SERVERS)
async def test_a_ban_closes_with_4451_and_its_reason_under_every_server(
    start_server, server_database, kind
):
    # 17 bytes, then 2-byte characters: cut to 123 bytes, on a character.
    reason = "Banned for spam: " + "é" * 80
    servers.chat_moderate(server_database, "ban", "--address", "127.0.0.1", "--reason", reason)
    server = start_server(kind)
    async with ws_connect(f"{server.ws_url}/websocket/ws_chat") as ws:
        code, said = await close_frame(ws)
    assert (code, said) == (4451, "Banned for spam: " + "é" * 53)
    assert len(said.encode()) == 123


@pytest.mark.parametrize(
    ("kind", "proxy_args"),
    [
        # docs/deploy.md: behind nginx on the same machine.
        ("uvicorn", ["--proxy-headers", "--forwarded-allow-ips", "127.0.0.1"]),
        ("daphne", ["--proxy-headers"]),
    ],
)
async def test_behind_a_proxy_a_ban_matches_the_forwarded_address(
    start_server, server_database, kind, proxy_args
):
    servers.chat_moderate(server_database, "ban", "--address", "203.0.113.0/24", "--reason", "No")
    server = start_server(kind, args=proxy_args)
    url = f"{server.ws_url}/websocket/ws_chat"
    async with ws_connect(url, additional_headers={"X-Forwarded-For": "203.0.113.7"}) as banned:
        assert await close_frame(banned) == (4451, "No")
    # The proxy itself (127.0.0.1) and other clients are not banned.
    for headers in ({}, {"X-Forwarded-For": "198.51.100.20"}):
        async with ws_connect(url, additional_headers=headers) as ws:
            await ws.send(json.dumps({"type": "join", "name": "Seiya"}))
            assert (await recv_type(ws, "joined"))["members"] == ["Seiya"]
