"""Draining on SIGTERM: every WebSocket closed with 1012, names freed at once, exit 0.

First through the real router (chat.drain begun by hand), then as SPEC
says it of real processes: `runserver` with the autoreloader (`make run`)
and without it, `daphne`, and the README's uvicorn command, alone and two
on one Redis.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import os
import signal
import time

import pytest
from channels.layers import get_channel_layer
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from chat import drain
from chat.presence import get_presence
from chat.testing import servers
from chat.testing.wsclient import recv_type, send

# SPEC: every WebSocket closed with 1012 within 5 s of the SIGTERM, the
# others hear the leaves at once, and the process exits 0 within 10 s.
CLOSE_DEADLINE = 5.0
LEAVE_DEADLINE = 5.0
EXIT_DEADLINE = 10.0


@pytest.fixture
def process_drain(monkeypatch) -> drain.Drain:
    """This test's own drain state, so that no other test sees the process draining."""
    state = drain.Drain()
    monkeypatch.setattr(drain, "_drain", state)
    return state


# Through the real router.


@pytest.mark.django_db(transaction=True)
async def test_a_drain_frees_every_name_before_closing_each_socket_with_1012(
    connect, process_drain
):
    shiryu, seiya, lurker = await connect(), await connect(), await connect()
    await shiryu.join("Shiryu")
    await seiya.join("Seiya")
    await shiryu.receive_type("presence")
    assert process_drain.begin(get_channel_layer()) == 3
    assert drain.draining()
    for client in (shiryu, seiya, lurker):
        # A leave heard first is the other member's, who drained first.
        frame = await client.communicator.receive_output(2)
        while frame["type"] == "websocket.send":
            assert json.loads(frame["text"])["event"] == "leave", frame
            frame = await client.communicator.receive_output(2)
        assert (frame["type"], frame.get("code")) == ("websocket.close", 1012)
    # The sockets are not gone yet (nobody answered the close): the names are.
    assert await get_presence().counts() == {}


@pytest.mark.django_db(transaction=True)
async def test_a_handshake_while_draining_is_closed_with_1012(connect, process_drain):
    process_drain.begin(get_channel_layer())
    late = await connect()
    assert await late.closed_with() == 1012


def test_healthz_answers_503_draining(client, process_drain):
    assert client.get("/healthz").status_code == 200
    process_drain.begin(get_channel_layer())
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (503, {"status": "draining"})


# Real processes.


def url(server: servers.ServerProcess) -> str:
    return f"{server.ws_url}/websocket/ws_chat/lobby"


async def join(ws, name: str) -> dict:
    await send(ws, {"type": "join", "name": name})
    return await recv_type(ws, "joined")


async def close_code(ws, deadline: float = CLOSE_DEADLINE) -> int:
    """The code the server closes `ws` with, read within `deadline` s (frames before it skipped)."""

    async def read_until_closed() -> int:
        try:
            while True:
                await ws.recv()
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else 1006

    return await asyncio.wait_for(read_until_closed(), deadline)


def terminate(server: servers.ServerProcess, *, group: bool = False) -> float:
    """SIGTERM the server (its whole process group, as systemd does by default); when."""
    if group:
        os.killpg(server.process.pid, signal.SIGTERM)
    else:
        server.process.send_signal(signal.SIGTERM)
    return time.monotonic()


async def exit_status(server: servers.ServerProcess, since: float) -> int | None:
    """The server's exit status, if it exits within EXIT_DEADLINE s of `since`."""
    while server.process.poll() is None:
        if time.monotonic() - since > EXIT_DEADLINE:
            return None
        await asyncio.sleep(0.05)
    return server.process.returncode


SIGTERMS = [
    pytest.param("runserver-autoreload", False, id="runserver-autoreload-parent"),
    pytest.param("runserver-autoreload", True, id="runserver-autoreload-group"),
    pytest.param("runserver", False, id="runserver-noreload"),
    pytest.param("daphne", False, id="daphne"),
    pytest.param("uvicorn", False, id="uvicorn"),
]


@pytest.mark.server
@pytest.mark.parametrize(("kind", "group"), SIGTERMS)
async def test_sigterm_closes_every_websocket_with_1012_and_exits_0(start_server, kind, group):
    server = start_server(kind)
    async with ws_connect(url(server)) as shun, ws_connect(url(server)) as ikki:
        await join(shun, "Shun")
        await join(ikki, "Ikki")
        await recv_type(shun, "presence")
        since = terminate(server, group=group)
        codes = await asyncio.gather(close_code(shun), close_code(ikki))
        assert codes == [1012, 1012], server.log()
    status = await exit_status(server, since)
    assert status == 0, f"exit status {status}:\n{server.log()}"


async def silent_member(server: servers.ServerProcess) -> asyncio.StreamWriter:
    """A WebSocket client that completes its handshake and then reads nothing, ever.

    It never answers the server's close, so the drain waits for it until
    Daphne (autobahn) gives up on the close handshake, a second later.
    """
    reader, writer = await asyncio.open_connection(servers.HOST, server.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET /websocket/ws_chat/lobby HTTP/1.1\r\nHost: {servers.HOST}:{server.port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    response = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert response.startswith(b"HTTP/1.1 101"), response
    return writer


def get_health(connection: http.client.HTTPConnection) -> tuple[int, dict, bool]:
    """GET /healthz on a connection kept open: status, body, and whether it stays open."""
    connection.request("GET", "/healthz")
    response = connection.getresponse()
    return response.status, json.loads(response.read()), not response.will_close


async def handshake_answer(server: servers.ServerProcess) -> str:
    """What a new WebSocket handshake gets: "refused", or the code it is closed with."""
    try:
        async with ws_connect(url(server), open_timeout=5) as late:
            return str(await close_code(late))
    except (OSError, InvalidHandshake):
        return "refused"


@pytest.mark.server
@pytest.mark.parametrize("kind", ["runserver", "daphne"])
async def test_during_the_drain_new_handshakes_are_refused_and_healthz_says_draining(
    start_server, kind
):
    server = start_server(kind)
    silent = await silent_member(server)
    health = http.client.HTTPConnection(servers.HOST, server.port, timeout=5)
    try:
        status, body, kept_open = await asyncio.to_thread(get_health, health)
        assert (status, body["status"], kept_open) == (200, "ok", True)
        async with ws_connect(url(server)) as shun:
            await join(shun, "Shun")
            since = terminate(server)
            assert await close_code(shun) == 1012
            # The drain goes on, waiting for the silent member.
            status, body, _ = await asyncio.to_thread(get_health, health)
            answer = await handshake_answer(server)
            still_draining = server.process.poll() is None
        assert (status, body) == (503, {"status": "draining"})
        assert answer in ("refused", "1012"), answer
        assert still_draining, "the checks came after the drain: they proved nothing"
    finally:
        health.close()
        silent.close()
    status = await exit_status(server, since)
    assert status == 0, f"exit status {status}:\n{server.log()}"


@pytest.mark.server
@pytest.mark.redis
@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
async def test_a_drained_member_is_gone_at_once_for_every_other_process(
    start_server, redis_server, kind
):
    # Far longer than the deadlines: only the drain, not an expiry, can free the name in time.
    env = {"REDIS_URL": redis_server.url, "CHAT_PRESENCE_TTL_SECONDS": "60"}
    stopping, staying = (start_server(kind, wait=False, **env) for _ in range(2))
    stopping.wait_ready()
    staying.wait_ready()
    async with ws_connect(url(stopping)) as hyoga, ws_connect(url(staying)) as shun:
        await join(hyoga, "Hyoga")
        assert (await join(shun, "Shun"))["members"] == ["Hyoga", "Shun"]
        await recv_type(hyoga, "presence")
        since = terminate(stopping)
        assert await close_code(hyoga) == 1012
        leave = await recv_type(
            shun, "presence", timeout=LEAVE_DEADLINE - (time.monotonic() - since)
        )
        assert (leave["event"], leave["name"], leave["count"]) == ("leave", "Hyoga", 1)
        # Hyoga's page comes back on the process that stays, under the same name.
        async with ws_connect(url(staying)) as hyoga_again:
            assert (await join(hyoga_again, "Hyoga"))["members"] == ["Shun", "Hyoga"]
            assert (await recv_type(shun, "presence"))["event"] == "join"
    status = await exit_status(stopping, since)
    assert status == 0, f"exit status {status}:\n{stopping.log()}"
