"""Recovery across real processes: two Daphne processes on one test-started Redis.

A member that leaves one process resumes on the other with nothing lost;
after a kill -9 its rejoin takes its own name over at once.
"""

from __future__ import annotations

import asyncio
import signal

import pytest
import redis.asyncio
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from chat.testing.wsclient import closed_code, recv, recv_type, send
from chat.tests.test_redis_servers import (
    EXPIRY_DEADLINE,
    SHORT_PRESENCE_TTL,
    chat_settings,
    join,
    start_pair,
    url,
)

pytestmark = [pytest.mark.redis, pytest.mark.server]

__all__ = ["start_pair"]  # the fixture, used by name below

GAP = 20
# A loaded 2-core machine: how long a frame may take.
DEADLINE = 10.0


async def test_a_member_leaves_one_process_and_resumes_on_the_other(start_pair, server_database):
    await chat_settings(server_database, "rate_limit_per_second=0")
    one, two = start_pair()
    async with ws_connect(url(one)) as shun:
        await join(shun, "Shun")
        async with ws_connect(url(one)) as ikki:
            joined = await join(ikki, "Ikki")
            await recv_type(shun, "presence")
            await send(shun, {"message": "seen"})
            last = (await recv_type(ikki, "message"))["offset"]
        await recv_type(shun, "presence")  # Ikki left
        for n in range(GAP):
            await send(shun, {"message": f"gap {n}", "client_id": str(n)})
        acked = [(await recv_type(shun, "ack"))["offset"] for _ in range(GAP)]
        assert acked == list(range(last + 1, last + GAP + 1))
        async with ws_connect(url(two)) as back:
            await send(
                back, {"type": "join", "name": "Ikki", "resume": joined["resume"], "offset": last}
            )
            answer = await recv_type(back, "joined")
            assert answer["recovered"] is True
            replayed = [await recv_type(back, "message") for _ in range(GAP)]
            assert [m["message"] for m in replayed] == [f"gap {n}" for n in range(GAP)]
            assert [m["offset"] for m in replayed] == acked
            await send(shun, {"message": "live"})
            assert (await recv_type(back, "message"))["message"] == "live"
            await send(back, {"type": "ping"})
            assert await recv(back) == {"type": "pong"}, "nothing doubled"


async def test_after_a_kill_the_rejoin_takes_its_name_over_at_once(start_pair, server_database):
    one, two = start_pair(CHAT_PRESENCE_TTL_SECONDS=SHORT_PRESENCE_TTL)
    async with ws_connect(url(two)) as shun:
        await join(shun, "Shun")
        ikki = await ws_connect(url(one))
        joined = await join(ikki, "Ikki")
        await recv_type(shun, "presence")
        one.kill()
        assert await closed_code(ikki) == 1006
        async with ws_connect(url(two)) as back:
            # Without the token the name is still held by the dead process's entry.
            await send(back, {"type": "join", "name": "Ikki"})
            assert (await recv_type(back, "error"))["code"] == "name_taken"
            await send(back, {"type": "join", "name": "Ikki", "resume": joined["resume"]})
            answer = await recv_type(back, "joined")
            assert answer["members"] == ["Shun", "Ikki"]
            await send(back, {"message": "back"})
            # The room heard no leave and no join for Ikki: its next frame is the message.
            message = await recv_type(shun, "message")
            assert (message["name"], message["message"]) == ("Ikki", "back")
            # Nor later, when the dead process's entry would have expired:
            # the entry is the new connection's, refreshed by process two.
            with pytest.raises(TimeoutError):
                frame = await recv(shun, timeout=EXPIRY_DEADLINE / 2)
                pytest.fail(f"Shun heard {frame}")
            await send(back, {"message": "still here"})
            assert (await recv_type(shun, "message"))["message"] == "still here"


MEMBERS = 4
MESSAGES = 150
# Steady traffic: a message every SEND_INTERVAL, the drain in the middle of it.
SEND_INTERVAL = 0.02
DRAIN_AFTER = 40


async def test_a_drain_under_steady_traffic_loses_nothing_for_members_who_resume(
    start_pair, server_database
):
    """Members of process one resume on process two after its drain: 0 lost, 0 doubled."""
    await chat_settings(server_database, "rate_limit_per_second=0")
    one, two = start_pair()
    resumed = []
    joined_all = asyncio.Event()
    ready: list[str] = []

    async def member(name: str) -> list[int]:
        offsets: list[int] = []
        ws = await ws_connect(url(one))
        joined = await join(ws, name)
        ready.append(name)
        if len(ready) == MEMBERS:
            joined_all.set()
        try:
            while True:
                try:
                    frame = await recv(ws, timeout=DEADLINE)
                except ConnectionClosed as closed:
                    assert closed.rcvd is not None and closed.rcvd.code == 1012, closed
                    # As the page does: rejoin at once, elsewhere, with the token and offset.
                    ws = await ws_connect(url(two))
                    rejoin = {"type": "join", "name": name, "resume": joined["resume"]}
                    if offsets:
                        rejoin["offset"] = offsets[-1]
                    await send(ws, rejoin)
                    joined = await recv_type(ws, "joined")
                    assert joined["recovered"] is True, joined
                    resumed.append(name)
                    continue
                if frame["type"] == "message":
                    offsets.append(frame["offset"])
                    if frame["message"] == "end":
                        return offsets
        finally:
            await ws.close()

    async with ws_connect(url(two)) as sender:
        await join(sender, "Sender")
        members = [asyncio.ensure_future(member(f"M{n}")) for n in range(MEMBERS)]
        await asyncio.wait_for(joined_all.wait(), DEADLINE)
        texts = [f"m{n}" for n in range(MESSAGES)] + ["end"]
        for n, text in enumerate(texts):
            await send(sender, {"message": text, "client_id": str(n)})
            if n == DRAIN_AFTER:
                one.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(SEND_INTERVAL)
        acked = []
        while len(acked) < len(texts):
            frame = await recv(sender, timeout=DEADLINE)
            if frame["type"] == "ack":
                acked.append(frame["offset"])
        heard = await asyncio.wait_for(asyncio.gather(*members), DEADLINE * 4)
    assert sorted(resumed) == [f"M{n}" for n in range(MEMBERS)]
    assert acked == list(range(acked[0], acked[0] + len(texts)))
    for offsets in heard:
        # Every message once, in order: the replay and the live frames met without a seam.
        assert offsets == acked
    assert one.process.wait(10) == 0


async def test_members_who_stayed_hear_a_new_run_of_offsets_after_redis_lost_the_window(
    start_pair, redis_server, server_database
):
    """The window's key expires after a day without a message or a join, with
    members still connected (or an operator flushes it): the room's offsets
    start again at 1, and those members must still hear every message."""
    await chat_settings(server_database, "rate_limit_per_second=0")
    one, two = start_pair()
    async with ws_connect(url(one)) as shun, ws_connect(url(two)) as ikki:
        await join(shun, "Shun")
        before = await join(ikki, "Ikki")
        await recv_type(shun, "presence")
        for n in range(3):
            await send(shun, {"message": f"old {n}"})
            assert (await recv_type(ikki, "message"))["offset"] == n + 1
        client = redis.asyncio.Redis.from_url(redis_server.url, socket_timeout=2)
        try:
            assert await client.delete("chat:layer:window:chat.lobby") == 1
        finally:
            await client.aclose()
        for n in range(4):
            await send(shun, {"message": f"new {n}", "client_id": str(n)})
            assert (await recv_type(shun, "ack"))["offset"] == n + 1
            heard = await recv_type(ikki, "message")
            assert (heard["message"], heard["offset"]) == (f"new {n}", n + 1)
        # A rejoin with a token of the lost run recovers nothing, as SPEC says.
        async with ws_connect(url(one)) as back:
            await send(
                back, {"type": "join", "name": "Ikki", "resume": before["resume"], "offset": 3}
            )
            assert (await recv_type(back, "joined"))["recovered"] is False
