"""Scale-out: two real Daphne processes on one real Redis, talked to over real sockets."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable

import pytest
from websockets.asyncio.client import connect as ws_connect

from chat.testing import servers
from chat.testing.wsclient import closed_code, recv, recv_type, send

pytestmark = [pytest.mark.redis, pytest.mark.server]

# Short, so that a killed process's members expire quickly in that test; the
# other tests keep the production default (chatsite/settings.py), so that a
# busy machine cannot stall a live process into expiring its members.
SHORT_PRESENCE_TTL = "3"
# TTL, plus a sweep interval, plus slack for a loaded machine.
EXPIRY_DEADLINE = 20.0
# SPEC: a settings change is obeyed by every process within 5 s.
SETTINGS_DEADLINE = 5.0
# channels-redis blocks 5 s in BZPOPMIN on an idle channel: stay idle longer.
IDLE_SECONDS = 6.5
MESSAGES = 100
# SPEC: a room of more than 100 members may hear its joins and leaves as at
# most one diff a second.
LARGE_ROOM = 110
BURST = 10


@pytest.fixture
def start_pair(start_server, redis_server) -> Callable[..., list[servers.ServerProcess]]:
    """Start two Daphne processes on the test's Redis and database, side by side."""

    def start(**extra_env: str) -> list[servers.ServerProcess]:
        env = {"REDIS_URL": redis_server.url, **extra_env}
        pair = [start_server("daphne", wait=False, **env) for _ in range(2)]
        for process in pair:
            process.wait_ready()
        return pair

    return start


def url(server: servers.ServerProcess, room: str = "lobby") -> str:
    return f"{server.ws_url}/websocket/ws_chat/{room}"


async def join(ws, name: str) -> dict:
    await send(ws, {"type": "join", "name": name})
    return await recv_type(ws, "joined")


async def eventually(check: Callable[[], Awaitable[bool]], deadline: float, what: str) -> None:
    """Poll `check` until it holds; fail after `deadline` seconds."""
    end = time.monotonic() + deadline
    while not await check():
        assert time.monotonic() < end, f"not within {deadline} s: {what}"
        await asyncio.sleep(0.2)


async def chat_settings(database, *assignments: str) -> None:
    """Change the shared settings the way an operator does."""
    argv = [sys.executable, "manage.py", "chat_settings"]
    for assignment in assignments:
        argv += ["--set", assignment]
    command = await asyncio.create_subprocess_exec(
        *argv,
        cwd=servers.PROJECT_DIR,
        env=servers.server_env(database),
        stdout=asyncio.subprocess.DEVNULL,
    )
    assert await asyncio.wait_for(command.wait(), 60) == 0


async def test_delivery_both_ways_in_order_after_idling(start_pair, server_database):
    # Loss and order are under test here, not the rate limit.
    await chat_settings(server_database, "rate_limit_per_second=0")
    one, two = start_pair()
    async with ws_connect(url(one)) as shun, ws_connect(url(two)) as ikki:
        await join(shun, "Shun")
        assert (await join(ikki, "Ikki"))["members"] == ["Shun", "Ikki"]
        presence = await recv_type(shun, "presence")
        assert (presence["event"], presence["name"], presence["count"]) == ("join", "Ikki", 2)
        # Idle for longer than the layer's blocking receive: nothing may break.
        await asyncio.sleep(IDLE_SECONDS)
        for index in range(MESSAGES):
            await send(shun, {"message": f"s{index}"})
            await send(ikki, {"message": f"i{index}", "client_id": str(index)})
        heard_by_shun = [(await recv_type(shun, "message"))["message"] for _ in range(MESSAGES)]
        assert heard_by_shun == [f"i{index}" for index in range(MESSAGES)]
        to_ikki = [await recv(ikki) for _ in range(2 * MESSAGES)]
        assert {frame["type"] for frame in to_ikki} == {"message", "ack"}, to_ikki
        heard_by_ikki = [frame["message"] for frame in to_ikki if frame["type"] == "message"]
        acks = [frame["client_id"] for frame in to_ikki if frame["type"] == "ack"]
        assert heard_by_ikki == [f"s{index}" for index in range(MESSAGES)]
        assert acks == [str(index) for index in range(MESSAGES)]
        await shun.send(json.dumps({"type": "ping"}))
        assert await recv(shun) == {"type": "pong"}, "nothing more than sent"


@pytest.mark.parametrize(
    "rival",
    [str.upper, lambda name: name.replace("i", "\u0456")],  # a Cyrillic i
    ids=["case", "look-alike"],
)
async def test_name_race_across_processes_has_one_winner(start_pair, rival):
    one, two = start_pair()
    for round_ in range(5):
        async with ws_connect(url(one, "race")) as left, ws_connect(url(two, "race")) as right:
            name = f"Seiya{round_}"
            await asyncio.gather(
                send(left, {"type": "join", "name": name}),
                send(right, {"type": "join", "name": rival(name)}),
            )
            first = await asyncio.gather(recv(left), recv(right))
            outcomes = sorted(frame.get("code", frame["type"]) for frame in first)
            assert outcomes == ["joined", "name_taken"], first


async def test_presence_counts_across_processes(start_pair):
    one, two = start_pair()
    async with (
        ws_connect(url(one, "count")) as a,
        ws_connect(url(two, "count")) as b,
        ws_connect(url(one, "count")) as c,
    ):
        await join(a, "A")
        assert (await join(b, "B"))["members"] == ["A", "B"]
        assert (await join(c, "C"))["members"] == ["A", "B", "C"]
        # B's and C's joins come from two processes: their order is not fixed.
        joins = [await recv_type(a, "presence") for _ in range(2)]
        assert sorted((frame["name"], frame["count"]) for frame in joins) == [("B", 2), ("C", 3)]
        assert (await recv_type(b, "presence"))["count"] == 3
        await b.close()
        for watcher in (a, c):
            leave = await recv_type(watcher, "presence")
            assert (leave["event"], leave["name"], leave["count"]) == ("leave", "B", 2)


async def test_a_killed_process_leaves_its_room_and_frees_its_names(start_pair):
    doomed, survivor = start_pair(CHAT_PRESENCE_TTL_SECONDS=SHORT_PRESENCE_TTL)
    async with ws_connect(url(survivor)) as watcher:
        await join(watcher, "Watcher")
        ghosts = [await ws_connect(url(doomed)) for _ in range(2)]
        for index, ghost in enumerate(ghosts):
            await join(ghost, f"Ghost{index}")
            await recv_type(watcher, "presence")
        doomed.kill()
        leaves = [await recv_type(watcher, "presence", EXPIRY_DEADLINE) for _ in ghosts]
        assert sorted(leave["name"] for leave in leaves) == ["Ghost0", "Ghost1"]
        assert [leave["count"] for leave in leaves] == [2, 1]
        assert {leave["event"] for leave in leaves} == {"leave"}
        async with ws_connect(url(survivor)) as again:
            assert (await join(again, "ghost0"))["members"] == ["Watcher", "ghost0"]
        status, body = survivor.healthz()
        assert status == 200, body


async def presence_until(ws, names: set[str], field: str) -> list[tuple[float, dict]]:
    """Read presence frames until every name in `names` was in one: each frame and its arrival."""
    frames, missing = [], set(names)
    while missing:
        frame = await recv_type(ws, "presence", EXPIRY_DEADLINE)
        frames.append((time.monotonic(), frame))
        if frame["event"] == "diff":
            missing.difference_update(frame[field])
        else:
            missing.discard(frame["name"])
    return frames


def at_most_one_a_second(frames: list[tuple[float, dict]]) -> None:
    """All diffs, no more of them than one a second (half a second's slack for arrival)."""
    assert {frame["event"] for _, frame in frames} == {"diff"}, frames
    span = frames[-1][0] - frames[0][0]
    assert len(frames) <= span + 1.5, (len(frames), span)


async def test_a_large_room_over_two_processes_hears_one_diff_a_second(start_pair):
    doomed, survivor = start_pair(CHAT_PRESENCE_TTL_SECONDS=SHORT_PRESENCE_TTL)
    sockets = []

    async def member(server: servers.ServerProcess, name: str) -> None:
        # Unbounded: these members read nothing, and must not stall the server.
        ws = await ws_connect(url(server, "big"), max_queue=None)
        sockets.append(ws)
        await join(ws, name)

    try:
        watcher = await ws_connect(url(survivor, "big"))
        sockets.append(watcher)
        await join(watcher, "Watcher")
        names = {f"M{index}": (doomed, survivor)[index % 2] for index in range(LARGE_ROOM)}
        for name, server in names.items():
            await member(server, name)
        await presence_until(watcher, set(names), "joins")

        # A burst of joins through both processes: one diff a second in all.
        burst = {f"B{index}": (doomed, survivor)[index % 2] for index in range(2 * BURST)}
        await asyncio.gather(*(member(server, name) for name, server in burst.items()))
        names.update(burst)
        at_most_one_a_second(await presence_until(watcher, set(burst), "joins"))

        # The survivor sweeps the dead process's members: their leaves in diffs too.
        doomed.kill()
        gone = {name for name, server in names.items() if server is doomed}
        leaves = await presence_until(watcher, gone, "leaves")
        at_most_one_a_second(leaves)
        assert {name for _, frame in leaves for name in frame["leaves"]} == gone
        assert leaves[-1][1]["count"] == 1 + len(names) - len(gone)
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets))


async def test_a_settings_change_reaches_every_process(start_pair, server_database):
    pair = start_pair()
    sockets = [await ws_connect(url(server, f"room{index}")) for index, server in enumerate(pair)]
    try:
        for index, ws in enumerate(sockets):
            await join(ws, f"Member{index}")
        await chat_settings(server_database, "max_message_length=5")
        for ws in sockets:
            replies: list[dict] = []

            async def refused(ws=ws, replies=replies) -> bool:
                await send(ws, {"message": "123456", "client_id": "probe"})
                replies.append(await recv(ws))
                return replies[-1]["type"] == "error"

            await eventually(refused, SETTINGS_DEADLINE, "the new limit is enforced")
            assert replies[-1]["code"] == "message_too_long"
    finally:
        for ws in sockets:
            await ws.close()


async def test_redis_outage_closes_with_4503_and_the_chat_recovers(start_pair, redis_server):
    one, two = start_pair()
    members = [await ws_connect(url(server)) for server in (one, two)]
    for index, ws in enumerate(members):
        await join(ws, f"Before{index}")
    redis_server.stop()
    for ws in members:
        assert await closed_code(ws, EXPIRY_DEADLINE) == 4503
    for server in (one, two):
        status, body = server.healthz()
        assert status == 503, body
        assert json.loads(body)["redis"] != "ok"
    async with ws_connect(url(one)) as during:
        assert await closed_code(during, EXPIRY_DEADLINE) == 4503

    redis_server.start()

    async def healthy() -> bool:
        return all(server.healthz()[0] == 200 for server in (one, two))

    await eventually(healthy, EXPIRY_DEADLINE, "both processes report healthy again")
    async with ws_connect(url(one)) as hyoga, ws_connect(url(two)) as shiryu:
        await join(hyoga, "Hyoga")
        assert (await join(shiryu, "Shiryu"))["members"] == ["Hyoga", "Shiryu"]
        await recv_type(hyoga, "presence")
        await send(hyoga, {"message": "back"})
        assert (await recv_type(shiryu, "message"))["message"] == "back"
        await send(shiryu, {"message": "indeed"})
        assert (await recv_type(hyoga, "message"))["message"] == "indeed"
