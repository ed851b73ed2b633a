"""Settings and rooms edited in admin reach live connections, with no query per frame."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.db import connection

from chat import conf, protocol
from chat.conf import ChatConfig, ConfigCache, RoomSettings, RoomStatus
from chat.models import ChatSettings, Room
from chat.moderation import services

pytestmark = pytest.mark.django_db(transaction=True)

# SPEC: a change is applied by every process within 5 s.
PROPAGATION_SECONDS = 5.0


@sync_to_async
def update_settings(**values) -> None:
    ChatSettings.objects.filter(pk=ChatSettings.SINGLETON_PK).update(**values)


@database_sync_to_async
def query_count() -> int:
    """Queries run so far on the connection the consumers' ORM calls use."""
    connection.force_debug_cursor = True
    return len(connection.queries_log)


async def test_relaying_a_burst_runs_no_query(connect, monkeypatch):
    await sync_to_async(ChatSettings.load)()
    # A snapshot that cannot go stale during the test: any query seen below
    # comes from the frame path itself, not from the periodic reload.
    monkeypatch.setattr(conf, "_cache", ConfigCache(ttl=3600))
    shiryu, seiya = await connect(), await connect()
    await shiryu.join("Shiryu")
    await seiya.join("Seiya")
    await shiryu.receive_type("presence")
    before = await query_count()
    for index in range(10):
        await seiya.send({"message": f"m{index}", "client_id": str(index)})
        await seiya.send({"type": "typing"})
        await seiya.send({"type": "ping"})
    relayed = [(await shiryu.receive())["type"] for _ in range(11)]
    assert sorted(relayed) == ["message"] * 10 + ["typing"]
    assert await query_count() == before


async def test_moderation_runs_no_query_per_frame_nor_per_join(connect, monkeypatch):
    """Bans, kicks, slow mode and room sizes are read from the snapshot, never per frame."""
    await sync_to_async(Room.objects.create)(slug="slow", slow_mode_seconds=60, max_members=5)
    await sync_to_async(services.ban_create)(name="Troll", address="192.0.2.0/24", reason="No")
    await sync_to_async(services.ban_create)(address="2001:db8::/32", room="slow")
    await sync_to_async(services.kick_create)(room="slow", name="Nobody")
    monkeypatch.setattr(conf, "_cache", ConfigCache(ttl=3600))
    config = await conf.get_config()
    assert len(config.bans) == 2 and len(config.kicks) == 1
    before = await query_count()
    path = "/websocket/ws_chat/slow"
    shiryu = await connect(path, client=("198.51.100.1", 1))
    seiya = await connect(path, client=("198.51.100.2", 2))
    await shiryu.join("Shiryu")
    await seiya.send({"name": "Seiya", "message": "first"})
    await seiya.receive_type("joined")
    assert (await seiya.error({"message": "second"}))["code"] == "rate_limited"
    await seiya.send({"type": "typing"})
    await seiya.send({"type": "ping"})
    assert await seiya.receive() == {"type": "pong"}
    relayed = [(await shiryu.receive())["type"] for _ in range(3)]
    assert relayed == ["presence", "message", "typing"]
    troll = await connect(path, client=("192.0.2.9", 3))
    assert await troll.closed_with() == protocol.CLOSE_BANNED
    assert await query_count() == before


async def test_query_counter_sees_the_reload(connect, monkeypatch):
    """The counter above can fail: a reload on the frame path is counted."""
    monkeypatch.setattr(conf, "_cache", ConfigCache(ttl=0))
    client = await connect()
    before = await query_count()
    await client.join("Seiya")
    assert await query_count() > before


async def test_changed_limit_reaches_a_live_connection_within_5_s(connect):
    client = await connect()
    await client.join("Seiya")
    await client.send({"message": "123456", "client_id": "first"})
    await client.receive_type("ack")
    await update_settings(max_message_length=5)
    started = time.monotonic()
    while True:
        await client.send({"message": "123456", "client_id": "probe"})
        frame = await client.receive()
        if frame["type"] == "error":
            assert frame["code"] == "message_too_long"
            assert "at most 5 characters" in frame["detail"]
            break
        assert frame["type"] == "ack"
        assert time.monotonic() - started < PROPAGATION_SECONDS, "the change did not arrive in time"
        await asyncio.sleep(0.25)
    assert time.monotonic() - started < PROPAGATION_SECONDS


async def test_closed_room_closes_with_4403(connect):
    await sync_to_async(Room.objects.create)(slug="quiet", is_open=False)
    client = await connect("/websocket/ws_chat/quiet")
    assert await client.closed_with() == protocol.CLOSE_ROOM_CLOSED


async def test_unknown_room_without_adhoc_rooms_closes_with_4404(connect):
    await sync_to_async(Room.objects.create)(slug="known")
    await sync_to_async(ChatSettings.load)()
    await update_settings(allow_adhoc_rooms=False)
    client = await connect("/websocket/ws_chat/unknown")
    assert await client.closed_with() == protocol.CLOSE_NO_SUCH_ROOM
    known = await connect("/websocket/ws_chat/known")
    assert (await known.join("Seiya"))["room"] == "known"


async def test_adhoc_room_is_open_by_default(connect):
    client = await connect("/websocket/ws_chat/anything-goes")
    assert (await client.join("Seiya"))["room"] == "anything-goes"


def test_room_status():
    config = ChatConfig(
        rooms={"open": RoomSettings(is_open=True), "shut": RoomSettings(is_open=False)},
        allow_adhoc_rooms=False,
    )
    assert config.room_status("open") is RoomStatus.OPEN
    assert config.room_status("shut") is RoomStatus.CLOSED
    assert config.room_status("other") is RoomStatus.MISSING
    assert ChatConfig(allow_adhoc_rooms=True).room_status("other") is RoomStatus.OPEN


async def test_cache_reloads_after_ttl_and_shares_one_reload():
    now = [0.0]
    loads = []

    def loader() -> ChatConfig:
        loads.append(now[0])
        return ChatConfig(max_name_length=len(loads))

    cache = ConfigCache(ttl=2.0, clock=lambda: now[0], loader=loader)
    first = await asyncio.gather(*(cache.get() for _ in range(20)))
    assert loads == [0.0]
    assert {config.max_name_length for config in first} == {1}
    now[0] = 1.9
    assert (await cache.get()).max_name_length == 1
    now[0] = 2.0
    # Expired: the reload starts, and the caller that started it may wait for it.
    assert (await cache.get(wait=True)).max_name_length == 2
    assert loads == [0.0, 2.0]


async def test_an_expired_snapshot_is_used_while_it_reloads():
    """A frame never waits for the database once the process has a snapshot."""
    now = [0.0]
    release = threading.Event()
    loads = []

    def loader() -> ChatConfig:
        if loads:
            assert release.wait(10), "never released"
        loads.append(now[0])
        return ChatConfig(max_name_length=len(loads))

    cache = ConfigCache(ttl=2.0, clock=lambda: now[0], loader=loader)
    assert (await cache.get()).max_name_length == 1
    now[0] = 2.5
    # The reload is held in its thread: every caller still gets the snapshot at once.
    stale = await asyncio.wait_for(asyncio.gather(*(cache.get() for _ in range(5))), 1.0)
    assert {config.max_name_length for config in stale} == {1}
    waiting = asyncio.ensure_future(cache.get(wait=True))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # the watch waits for the reload that is due
    release.set()
    assert (await waiting).max_name_length == 2
    assert (await cache.get()).max_name_length == 2
    assert loads == [0.0, 2.5]


async def test_a_failed_reload_keeps_the_snapshot_and_is_tried_again(caplog):
    now = [0.0]
    failures = [RuntimeError("database gone")]

    def loader() -> ChatConfig:
        if now[0] and failures:
            raise failures.pop()
        return ChatConfig(max_name_length=int(now[0]) + 1)

    cache = ConfigCache(ttl=2.0, clock=lambda: now[0], loader=loader)
    await cache.get()
    now[0] = 3.0
    with pytest.raises(RuntimeError, match="database gone"):
        await cache.get(wait=True)
    assert "the chat settings could not be reloaded: database gone" in caplog.text
    assert (await cache.get()).max_name_length == 1  # the snapshot it had, and a new try
    assert (await cache.get(wait=True)).max_name_length == 4
