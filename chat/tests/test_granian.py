"""Whether granian, a Rust ASGI server, keeps SPEC's behaviour, as uvicorn and Daphne do.

docs/performance.md measures it beside them. What it keeps is asserted as
SPEC says it; where it does not, the test asserts what it does instead, so
that a granian release that changes it fails here and the README's
recommendation can be looked at again.
"""

from __future__ import annotations

import asyncio
import signal
import time

import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from chat.testing.wsclient import closed_code, recv, recv_type, send

pytestmark = pytest.mark.server

MAX_FRAME = 64 * 1024
# SPEC "Restarts and drains": the process exits within 10 s of the SIGTERM.
EXIT_DEADLINE = 10.0


def chat_url(server) -> str:
    return f"{server.ws_url}/websocket/ws_chat"


async def join(ws, name: str) -> dict:
    await send(ws, {"type": "join", "name": name})
    return await recv_type(ws, "joined")


def message_frame(size: int) -> str:
    """A chat message frame of exactly `size` bytes."""
    frame = '{"message": "' + "x" * (size - 15) + '"}'
    assert len(frame.encode()) == size
    return frame


async def test_two_members_chat_under_granian(start_server):
    server = start_server("granian")
    async with ws_connect(chat_url(server)) as shiryu, ws_connect(chat_url(server)) as seiya:
        await join(shiryu, "Shiryu")
        assert (await join(seiya, "Seiya"))["members"] == ["Shiryu", "Seiya"]
        assert (await recv_type(shiryu, "presence"))["name"] == "Seiya"
        await send(seiya, {"message": "Olá"})
        assert (await recv_type(shiryu, "message"))["message"] == "Olá"


async def test_the_origin_rule_holds_under_granian(start_server):
    server = start_server("granian")
    with pytest.raises(InvalidStatus) as refused:
        async with ws_connect(chat_url(server), origin="http://evil.example"):
            pass
    assert refused.value.response.status_code == 403
    for origin in (None, server.base_url):
        async with ws_connect(chat_url(server), origin=origin) as ws:
            await send(ws, {"type": "ping"})
            assert await recv(ws) == {"type": "pong"}


async def test_a_frame_of_64_kib_is_read_and_answered_under_granian(start_server):
    server = start_server("granian")
    async with ws_connect(chat_url(server), max_size=None) as ws:
        await join(ws, "Big")
        await ws.send(message_frame(MAX_FRAME))
        assert (await recv_type(ws, "error"))["code"] == "message_too_long"


async def test_granian_has_no_frame_limit_a_frame_over_64_kib_gets_the_chats_4009_not_1009(
    start_server,
):
    """SPEC: 1009, from the server's own size limit. granian has no option for one.

    It reads the whole frame, here 1 MiB (its built-in limits are 16 MiB a
    frame and 64 MiB a message), and hands it to the application, which
    closes with its own 4009 (chat.protocol.CLOSE_TOO_BIG).
    """
    server = start_server("granian")
    async with ws_connect(chat_url(server), max_size=None) as ws:
        await join(ws, "Huge")
        await ws.send(message_frame(1024 * 1024))
        assert await closed_code(ws) == 4009


async def test_on_sigterm_granian_drops_every_websocket_without_a_close_frame(start_server):
    """SPEC: every WebSocket closed with 1012 within 5 s, and exit 0 within 10 s.

    chat.drain closes with 1012 from a hook in each server's shutdown
    (Daphne's, uvicorn's own); granian has none to give: its worker ends
    the connections itself, and the application hears of it only as a
    `websocket.disconnect` of a socket already gone (an ASGI lifespan
    shutdown, with `--interface asgi`, comes after that too). The client
    sees the TCP connection end with no close frame (1006).
    """
    server = start_server("granian")
    async with ws_connect(chat_url(server)) as shun, ws_connect(chat_url(server)) as ikki:
        await join(shun, "Shun")
        await join(ikki, "Ikki")
        await recv_type(shun, "presence")
        server.process.send_signal(signal.SIGTERM)
        since = time.monotonic()
        codes = await asyncio.gather(closed_code(shun), closed_code(ikki))
    assert codes == [1006, 1006]
    left = EXIT_DEADLINE - (time.monotonic() - since)
    assert await asyncio.to_thread(server.process.wait, left) == 0
