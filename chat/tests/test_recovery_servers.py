"""Recovery across real processes: two Daphne processes on one test-started Redis.

A member that leaves one process resumes on the other with nothing lost;
after a kill -9 its rejoin takes its own name over at once.
"""

from __future__ import annotations

import pytest
from websockets.asyncio.client import connect as ws_connect

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
