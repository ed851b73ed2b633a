"""GET /metrics: who may read it, and what the chat's figures say after a session."""

from __future__ import annotations

import asyncio
import json
import re
import time

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect as ws_connect

from chat import metrics
from chat.conf import expire_config
from chat.models import ChatSettings
from chat.testing.wsclient import closed_code, recv_type, send

TOKEN = "s3cret-token"

pytestmark = pytest.mark.django_db(transaction=True)


def families(text: str) -> dict[str, object]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def test_metrics_are_404_while_no_token_is_set(client):
    with override_settings(CHAT_METRICS_TOKEN=""):
        assert client.get("/metrics").status_code == 404
        assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer wrong",
        f"Bearer {TOKEN}x",
        f"Basic {TOKEN}",
        TOKEN,
        f"Bearer{TOKEN}",
        "Bearer s3cret-tokén",
        "Bearer \udcff",
        "Bearer " + "x" * 10_000,
    ],
)
def test_metrics_are_401_without_the_token(client, authorization):
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    with override_settings(CHAT_METRICS_TOKEN=TOKEN):
        response = client.get("/metrics", **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"chat_" not in response.content


@pytest.mark.parametrize("authorization", [f"Bearer {TOKEN}", f"bearer {TOKEN}"])
def test_metrics_in_the_prometheus_text_format_with_the_token(client, authorization):
    with override_settings(CHAT_METRICS_TOKEN=TOKEN):
        response = client.get("/metrics", HTTP_AUTHORIZATION=authorization)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    found = families(response.content.decode())
    for name in ["chat_connections", "chat_members", "chat_rooms", "process_cpu_seconds"]:
        assert name in found, name
    for name in ["chat_messages", "chat_deliveries", "chat_errors", "chat_closes"]:
        assert found[name].type == "counter", name
    assert found["chat_connections"].documentation.startswith("WebSocket connections open")
    # In-process layer: there is no Redis to be up or down.
    assert "chat_redis_up" not in found


def test_every_chat_metric_says_what_it_counts(client):
    with override_settings(CHAT_METRICS_TOKEN=TOKEN):
        text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    helps = [line for line in text.splitlines() if line.startswith("# HELP chat_")]
    assert len(helps) >= 9
    for line in helps:
        assert len(line.split(" ", 3)[3]) > 30, line


class _Redis:
    """Stands in for a Redis layer that watches its connection."""

    def up(self) -> bool:
        return True


def exposed_names(text: str) -> set[str]:
    """Every sample name a scrape of `text`'s families can hold (counters: _total)."""
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
    return names


def test_the_grafana_dashboard_is_importable_and_shows_metrics_that_exist(client):
    from chat import metrics
    from chat.testing.servers import PROJECT_DIR

    redis = _Redis()
    metrics.watch_redis(redis.up)
    with override_settings(CHAT_METRICS_TOKEN=TOKEN):
        text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    del redis
    assert "chat_redis_up 1.0" in text
    exposed = exposed_names(text)

    dashboard = json.loads((PROJECT_DIR / "docs" / "grafana-dashboard.json").read_text())
    assert dashboard["title"] and dashboard["uid"] and dashboard["schemaVersion"] >= 30
    # Importable anywhere: the data source is chosen at import.
    assert [item["name"] for item in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    shown: set[str] = set()
    for panel in dashboard["panels"]:
        assert panel["title"] and panel["gridPos"]["w"] > 0, panel
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}"
        for target in panel["targets"]:
            names = set(re.findall(r"\b((?:chat|process)_[a-z_]+)\b", target["expr"]))
            assert names, target
            assert names <= exposed, (panel["title"], names - exposed)
            shown |= names
    wanted = {
        "chat_connections", "chat_members", "chat_messages_total", "chat_deliveries_total",
        "chat_errors_total", "chat_closes_total", "chat_redis_up",
    }  # fmt: skip
    assert wanted <= shown


# The in-process figures, read as a scrape reads them.


def value(name: str, **labels: str) -> float:
    """A sample of this process's registry; 0 for a series not counted yet."""
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def figures() -> dict[str, float]:
    return {
        name: value(name)
        for name in [
            "chat_connections",
            "chat_members",
            "chat_rooms",
            "chat_messages_total",
            "chat_deliveries_total",
        ]
    }


def grew(before: dict[str, float], **expected: float) -> None:
    """Every figure is where `expected` says (a growth from `before`), the others unchanged."""
    now = figures()
    assert {name: now[name] - before[name] for name in now} == {
        name: expected.get(name.removeprefix("chat_").removesuffix("_total"), 0.0) for name in now
    }


@pytest.fixture
def counting(settings):
    """Metrics on, as with CHAT_METRICS_TOKEN set, for the connections the test opens."""
    settings.CHAT_METRICS_TOKEN = TOKEN


async def test_gauges_follow_open_join_and_close(counting, connect):
    before = figures()
    shun, hyoga, ikki = await connect(), await connect(), await connect("/websocket/ws_chat/other")
    grew(before, connections=3)
    await shun.join("Shun")
    await hyoga.join("Hyoga")
    # Shun hears Hyoga join; each joiner got its `joined`.
    await shun.receive_type("presence")
    grew(before, connections=3, members=2, rooms=1, deliveries=3)
    await ikki.join("Ikki")
    grew(before, connections=3, members=3, rooms=2, deliveries=4)
    await hyoga.disconnect()
    await shun.receive_type("presence")
    grew(before, connections=2, members=2, rooms=2, deliveries=5)
    await ikki.disconnect()
    await shun.disconnect()
    grew(before, deliveries=5)


async def test_a_session_of_n_messages_in_a_room_of_m_members(counting, connect):
    members, messages = 5, 7
    clients = [await connect("/websocket/ws_chat/session") for _ in range(members)]
    for number, client in enumerate(clients):
        await client.join(f"Member {number}")
    for number, client in enumerate(clients):
        for _ in range(members - 1 - number):
            await client.receive_type("presence")
    before = figures()
    speaker, *listeners = clients
    for number in range(messages):
        await speaker.send({"message": f"message {number}"})
    for listener in listeners:
        for _ in range(messages):
            await listener.receive_type("message")
    await speaker.assert_silent()
    grew(
        before,
        connections=0,
        messages=messages,
        deliveries=messages * (members - 1),
    )


async def test_errors_and_closes_by_code(counting, connect):
    def by_code(name: str, code: str) -> float:
        return value(name, code=code)

    errors_before = {
        code: by_code("chat_errors_total", code)
        for code in ["invalid_json", "name_taken", "not_joined"]
    }
    closes_before = {
        code: by_code("chat_closes_total", code) for code in ["1000", "1001", "4404", "other"]
    }
    seiya, shiryu = await connect(), await connect()
    await seiya.join("Seiya")
    assert (await shiryu.error("{nope"))["code"] == "invalid_json"
    assert (await shiryu.error({"type": "join", "name": "seiya"}))["code"] == "name_taken"
    assert (await shiryu.error({"type": "typing"}))["code"] == "not_joined"
    assert (await shiryu.error("[]"))["code"] == "invalid_frame"
    for code in errors_before:
        assert by_code("chat_errors_total", code) - errors_before[code] == 1, code
    await seiya.communicator.disconnect(code=1001)
    await shiryu.communicator.disconnect(code=3999)
    await set_adhoc_rooms(False)
    nowhere = await connect("/websocket/ws_chat/nowhere")
    assert await nowhere.closed_with() == 4404
    # The client's answer to the server's close is not a close of its own.
    await nowhere.disconnect()
    grown = {
        code: by_code("chat_closes_total", code) - closes_before[code] for code in closes_before
    }
    assert grown == {"1000": 0, "1001": 1, "4404": 1, "other": 1}


async def test_rejoins_with_a_token_are_counted_by_outcome(counting, connect):
    def recoveries(outcome: str) -> float:
        return value("chat_recoveries_total", recovered=outcome)

    before = {outcome: recoveries(outcome) for outcome in ("true", "false")}
    seiya = await connect()
    joined = await seiya.join("Seiya")
    await seiya.disconnect()
    back = await connect()
    await back.send({"type": "join", "name": "Seiya", "resume": joined["resume"]})
    assert (await back.receive_type("joined"))["recovered"] is True
    await back.disconnect()
    forged = await connect()
    await forged.send({"type": "join", "name": "Seiya", "resume": "not a token"})
    assert (await forged.receive_type("joined"))["recovered"] is False
    # A plain join is no rejoin.
    plain = await connect()
    await plain.join("Shun")
    grown = {outcome: recoveries(outcome) - before[outcome] for outcome in before}
    assert grown == {"true": 1, "false": 1}


async def set_adhoc_rooms(allowed: bool) -> None:
    def save() -> None:
        chat_settings = ChatSettings.load()
        chat_settings.allow_adhoc_rooms = allowed
        chat_settings.save()

    await sync_to_async(save)()
    expire_config()


async def test_nothing_is_counted_without_a_token(settings, connect):
    settings.CHAT_METRICS_TOKEN = ""
    before = figures()
    errors = value("chat_errors_total", code="invalid_json")
    lone, other = await connect(), await connect()
    await lone.join("Lone")
    await other.join("Other")
    await lone.receive_type("presence")
    await other.send({"message": "hello"})
    await lone.receive_type("message")
    await lone.error("{")
    await lone.disconnect()
    await other.disconnect()
    grew(before)
    assert value("chat_errors_total", code="invalid_json") == errors


# Real processes: exact figures over sockets, each process its own.


def scrape(server) -> dict[str, float]:
    """One process's /metrics: every sample by name and labels."""
    return server.scrape(TOKEN)


async def eventually(server, wanted: dict[str, float], timeout: float = 10.0) -> dict[str, float]:
    """Scrape until the figures in `wanted` hold (a server counts as its events arrive)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = await asyncio.to_thread(scrape, server)
        got = {name: samples.get(name, 0.0) for name in wanted}
        if got == wanted or time.monotonic() > deadline:
            assert got == wanted
            return samples
        await asyncio.sleep(0.05)


@pytest.mark.server
@pytest.mark.parametrize(
    # What each server reports for a connection lost without a close frame.
    ("kind", "lost"),
    [("uvicorn", "1005"), ("daphne", "1006")],
)
async def test_a_killed_tcp_connection_is_uncounted_at_once(start_server, kind, lost):
    server = start_server(kind, CHAT_METRICS_TOKEN=TOKEN)
    url = f"{server.ws_url}/websocket/ws_chat/kill"
    async with ws_connect(url) as stays:
        await send(stays, {"type": "join", "name": "Stays"})
        await recv_type(stays, "joined")
        killed = await ws_connect(url)
        await send(killed, {"type": "join", "name": "Killed"})
        await recv_type(killed, "joined")
        await recv_type(stays, "presence")
        await eventually(server, {"chat_connections": 2, "chat_members": 2, "chat_rooms": 1})
        # No close frame, no FIN handshake: the TCP connection just goes.
        killed.transport.abort()
        assert (await recv_type(stays, "presence"))["event"] == "leave"
        await eventually(
            server,
            {
                "chat_connections": 1,
                "chat_members": 1,
                "chat_rooms": 1,
                f"chat_closes_total{{code={lost}}}": 1,
            },
        )
    await eventually(
        server,
        {
            "chat_connections": 0,
            "chat_members": 0,
            "chat_rooms": 0,
            "chat_closes_total{code=1000}": 1,
        },
    )


@pytest.mark.server
@pytest.mark.redis
async def test_two_processes_on_redis_each_count_their_own(start_server, redis_server):
    env = {"CHAT_METRICS_TOKEN": TOKEN, "REDIS_URL": redis_server.url}
    one, two = (
        start_server("uvicorn", wait=False, **env),
        start_server("uvicorn", wait=False, **env),
    )
    one.wait_ready()
    two.wait_ready()
    room = "/websocket/ws_chat/shared"
    async with (
        ws_connect(one.ws_url + room) as seiya,
        ws_connect(one.ws_url + room) as shiryu,
        ws_connect(two.ws_url + room) as hyoga,
    ):
        for ws, name in [(seiya, "Seiya"), (shiryu, "Shiryu"), (hyoga, "Hyoga")]:
            await send(ws, {"type": "join", "name": name})
            await recv_type(ws, "joined")
        await recv_type(seiya, "presence")
        await recv_type(seiya, "presence")
        await recv_type(shiryu, "presence")
        wanted = {"chat_connections": 2, "chat_members": 2, "chat_rooms": 1, "chat_redis_up": 1}
        before_one = await eventually(one, wanted)
        before_two = await eventually(two, {**wanted, "chat_connections": 1, "chat_members": 1})
        messages = 3
        for number in range(messages):
            await send(seiya, {"message": f"hi {number}"})
        for ws in (shiryu, hyoga):
            for _ in range(messages):
                await recv_type(ws, "message")

        def grown(samples, before, name):
            return samples[name] - before[name]

        after_one = await asyncio.to_thread(scrape, one)
        after_two = await asyncio.to_thread(scrape, two)
        # Seiya's messages were accepted by process one only; each process
        # wrote them to its own members' sockets: Shiryu's on one, Hyoga's on two.
        assert grown(after_one, before_one, "chat_messages_total") == messages
        assert grown(after_two, before_two, "chat_messages_total") == 0
        assert grown(after_one, before_one, "chat_deliveries_total") == messages
        assert grown(after_two, before_two, "chat_deliveries_total") == messages


@pytest.mark.server
@pytest.mark.redis
async def test_redis_up_follows_an_outage_and_the_log_says_it_once(start_server, redis_server):
    server = start_server(
        "uvicorn", CHAT_METRICS_TOKEN=TOKEN, REDIS_URL=redis_server.url, CHAT_LOG_FORMAT="json"
    )
    url = f"{server.ws_url}/websocket/ws_chat/outage"
    async with ws_connect(url) as seiya:
        await send(seiya, {"name": "Seiya", "message": "a secret of mine"})
        await recv_type(seiya, "joined")
        await eventually(server, {"chat_redis_up": 1, "chat_members": 1})
        redis_server.stop()
        assert await closed_code(seiya) == 4503
    # A connection opened during the outage cannot get a channel: 4503 too.
    async with ws_connect(url) as during:
        assert await closed_code(during) == 4503
    await eventually(
        server,
        {
            "chat_redis_up": 0,
            "chat_members": 0,
            "chat_connections": 0,
            "chat_closes_total{code=4503}": 2,
        },
    )
    redis_server.start()
    await eventually(server, {"chat_redis_up": 1}, timeout=20)

    lines = [line for line in server.log().splitlines() if line.strip()]
    chat_lines = [json.loads(line) for line in lines if line.startswith("{")]
    refused = [entry for entry in chat_lines if entry["message"].startswith("closing a new")]
    assert [entry["room"] for entry in refused] == ["outage"], chat_lines
    assert refused[0]["level"] == "WARNING" and "Redis unavailable" in refused[0]["message"]
    for entry in chat_lines:
        assert entry["message"].count("Redis unavailable") <= 1, entry
    # The people's words and names are theirs: not in the operator's log.
    assert not [line for line in lines if "Seiya" in line or "a secret of mine" in line]
    # --no-access-log holds: HTTP requests (the scrapes) are not logged.
    assert "GET /metrics" not in server.log()


async def test_each_moderation_action_is_counted_by_the_process_that_applies_it(
    counting, connect
):
    from asgiref.sync import sync_to_async

    from chat.models import Room
    from chat.moderation import services

    before = {action: value("chat_moderation_total", action=action) for action in
              ("ban", "kick", "close_room", "no_room")}  # fmt: skip
    await sync_to_async(services.ban_create)(address="203.0.113.7")
    await sync_to_async(Room.objects.create)(slug="shut", is_open=False)
    banned = await connect(client=("203.0.113.7", 1))
    assert await banned.closed_with() == 4451
    shut = await connect("/websocket/ws_chat/shut")
    assert await shut.closed_with() == 4403
    ikki = await connect()
    await ikki.join("Ikki")
    await sync_to_async(services.kick_create)(room="lobby", name="Ikki")
    assert await ikki.closed_with(timeout=5.0) == 4401
    grown = {action: value("chat_moderation_total", action=action) - count
             for action, count in before.items()}  # fmt: skip
    assert grown == {"ban": 1, "kick": 1, "close_room": 1, "no_room": 0}
