"""Moderation through the real router and consumer: bans, kicks, closed rooms, slow mode, size."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from chat import protocol
from chat.models import Ban, ChatSettings, Kick, Room
from chat.moderation import services
from chat.sanctions import MAX_CLOSE_REASON_BYTES

pytestmark = pytest.mark.django_db(transaction=True)

# SPEC: moderation is effective in every process within 5 s.
PROPAGATION_SECONDS = 5.0
HOME = ("203.0.113.7", 50000)
ELSEWHERE = ("198.51.100.20", 50001)


async def closed(client, timeout: float = PROPAGATION_SECONDS) -> tuple[int, str]:
    """Read (and drop) frames until the server closes the socket: its code and reason."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"not closed within {timeout} s"
        output = await client.communicator.receive_output(left)
        if output["type"] == "websocket.close":
            return output.get("code", 1000), output.get("reason") or ""


ban = sync_to_async(services.ban_create)
kick = sync_to_async(services.kick_create)


@sync_to_async
def room(slug: str, **fields) -> Room:
    found, _ = Room.objects.update_or_create(slug=slug, defaults=fields)
    return found


# Bans.


async def test_an_address_ban_closes_a_new_connection_at_its_handshake(connect):
    await ban(address="203.0.113.0/24", reason="Spam")
    banned = await connect(client=HOME)
    assert await banned.closed() == (protocol.CLOSE_BANNED, "Spam")
    other = await connect(client=ELSEWHERE)
    assert (await other.join("Seiya"))["members"] == ["Seiya"]


async def test_a_name_ban_closes_at_the_join_whatever_the_case(connect):
    await ban(name="Ikki", reason="Be kind")
    watcher = await connect()
    await watcher.join("Watcher")
    banned = await connect()
    await banned.send({"type": "join", "name": "  iKKi "})
    assert await banned.closed() == (protocol.CLOSE_BANNED, "Be kind")
    # A tutorial-style frame joins and speaks at once: neither happens.
    again = await connect()
    await again.send({"name": "IKKI", "message": "I am back"})
    assert (await again.closed())[0] == protocol.CLOSE_BANNED
    # A look-alike of the banned name (a Cyrillic i, U+0456) is banned with it.
    look_alike = await connect()
    await look_alike.send({"type": "join", "name": "Ikk\u0456"})
    assert (await look_alike.closed())[0] == protocol.CLOSE_BANNED
    await watcher.assert_silent()
    assert await services.live_members(room="lobby") != []
    assert [live.name for live in await services.live_members()] == ["Watcher"]


async def test_a_ban_of_one_room_or_that_expired_keeps_nobody_out(connect):
    await ban(name="Shun", room="physics")
    expired = await sync_to_async(Ban.objects.create)(
        name="Shun", expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert expired.pk
    shun = await connect()
    assert (await shun.join("Shun"))["room"] == "lobby"
    in_physics = await connect("/websocket/ws_chat/physics")
    await in_physics.send({"type": "join", "name": "shun"})
    assert (await in_physics.closed())[0] == protocol.CLOSE_BANNED


async def test_a_new_ban_closes_live_connections_within_5_s(connect):
    target = await connect(client=HOME)
    await target.join("Hyoga")
    lurker = await connect(client=HOME)  # not joined: its address is enough
    bystander = await connect(client=ELSEWHERE)
    await bystander.join("Shiryu")
    await target.receive_type("presence")
    started = time.monotonic()
    await ban(address="203.0.113.7", reason="Go away")
    assert await closed(target) == (protocol.CLOSE_BANNED, "Go away")
    assert await closed(lurker) == (protocol.CLOSE_BANNED, "Go away")
    assert time.monotonic() - started < PROPAGATION_SECONDS
    await target.disconnect()  # as a client answers the close
    leave = await bystander.receive_type("presence")
    assert (leave["event"], leave["name"]) == ("leave", "Hyoga")
    await bystander.send({"type": "ping"})
    assert await bystander.receive() == {"type": "pong"}


async def test_a_new_name_ban_closes_the_member_with_that_name_only(connect):
    seiya, shiryu = await connect(), await connect()
    await seiya.join("Seiya")
    await shiryu.join("Shiryu")
    await seiya.receive_type("presence")
    await ban(name="SEIYA", reason="")
    assert await closed(seiya) == (protocol.CLOSE_BANNED, "")
    await seiya.disconnect()
    assert (await shiryu.receive_type("presence"))["event"] == "leave"
    await shiryu.send({"type": "ping"})
    assert await shiryu.receive() == {"type": "pong"}


async def test_the_close_reason_is_cut_to_123_bytes_on_a_character_boundary(connect):
    await ban(address="203.0.113.7", reason="é" * 100)  # 200 bytes of UTF-8
    banned = await connect(client=HOME)
    code, reason = await banned.closed()
    assert code == protocol.CLOSE_BANNED
    assert reason == "é" * 61
    assert len(reason.encode()) <= MAX_CLOSE_REASON_BYTES


# Kicks.


async def test_a_kick_closes_the_member_with_4401_and_is_recorded(connect):
    ikki, shun = await connect(), await connect()
    await ikki.join("Ikki")
    await shun.join("Shun")
    await ikki.receive_type("presence")
    order = await kick(room="lobby", name="ikki")
    assert await closed(ikki) == (protocol.CLOSE_KICKED, "")
    await ikki.disconnect()
    assert (await shun.receive_type("presence"))["name"] == "Ikki"
    done = await sync_to_async(Kick.objects.get)(pk=order.pk)
    assert done.removed_at is not None
    # The person may come back by hand: the kick is spent.
    again = await connect()
    assert (await again.join("Ikki"))["members"] == ["Shun", "Ikki"]
    await again.assert_silent(2 * services.KICK_POLL_SECONDS + 1.5)


async def test_a_kick_from_the_live_members_hits_that_connection_only(connect):
    ikki = await connect()
    await ikki.join("Ikki")
    [live] = await services.members_named(room="lobby", name="IKKI")
    await ikki.disconnect()
    # Somebody else took the name meanwhile: not who the moderator picked.
    other = await connect()
    await other.join("Ikki")
    await kick(room="lobby", name="Ikki", member=live.member)
    await other.assert_silent(3.5)


async def test_a_kick_of_a_name_in_another_room_closes_nobody(connect):
    ikki = await connect("/websocket/ws_chat/physics")
    await ikki.join("Ikki")
    await kick(room="lobby", name="Ikki")
    await ikki.assert_silent(3.5)


# Closed rooms.


async def test_closing_a_room_closes_its_live_connections_within_5_s(connect):
    await room("physics", is_open=True)
    member = await connect("/websocket/ws_chat/physics")
    await member.join("Seiya")
    lurker = await connect("/websocket/ws_chat/physics")
    elsewhere = await connect()
    await elsewhere.join("Shiryu")
    started = time.monotonic()
    await room("physics", is_open=False)
    assert (await closed(member))[0] == protocol.CLOSE_ROOM_CLOSED
    assert (await closed(lurker))[0] == protocol.CLOSE_ROOM_CLOSED
    assert time.monotonic() - started < PROPAGATION_SECONDS
    await elsewhere.send({"type": "ping"})
    assert await elsewhere.receive() == {"type": "pong"}


async def test_turning_ad_hoc_rooms_off_closes_the_ad_hoc_rooms_with_4404(connect):
    await room("lobby", is_open=True)
    adhoc = await connect("/websocket/ws_chat/somewhere")
    await adhoc.join("Seiya")
    lobby = await connect()
    await lobby.join("Shiryu")
    await sync_to_async(ChatSettings.load)()
    await sync_to_async(ChatSettings.objects.update)(allow_adhoc_rooms=False)
    assert (await closed(adhoc))[0] == protocol.CLOSE_NO_SUCH_ROOM
    await lobby.send({"type": "ping"})
    assert await lobby.receive() == {"type": "pong"}


# Slow mode.


async def test_slow_mode_allows_one_message_per_interval(connect):
    await room("lobby", slow_mode_seconds=1)
    seiya, shiryu = await connect(), await connect()
    await seiya.join("Seiya")
    await shiryu.join("Shiryu")
    await seiya.receive_type("presence")
    await shiryu.send({"message": "first", "client_id": "1"})
    await shiryu.receive_type("ack")
    error = await shiryu.error({"message": "second", "client_id": "2"})
    assert (error["code"], error["client_id"]) == ("rate_limited", "2")
    assert error["detail"] == (
        "This room is in slow mode: wait 1 second before your next message."
    )
    assert (await seiya.receive_type("message"))["message"] == "first"
    await seiya.assert_silent()
    # The interval itself is what is under test here.
    await asyncio.sleep(1.05)
    await shiryu.send({"message": "third", "client_id": "3"})
    await shiryu.receive_type("ack")


async def test_slow_mode_counts_the_message_that_joins(connect):
    await room("lobby", slow_mode_seconds=30)
    shiryu = await connect()
    await shiryu.send({"name": "Shiryu", "message": "hello"})
    await shiryu.receive_type("joined")
    error = await shiryu.error({"message": "again"})
    assert error["code"] == "rate_limited"
    assert "slow mode: wait 30 seconds" in error["detail"]


async def test_slow_mode_turned_on_reaches_a_live_connection_within_5_s(connect):
    await room("lobby", slow_mode_seconds=0)
    shiryu = await connect()
    await shiryu.join("Shiryu")
    await room("lobby", slow_mode_seconds=60)
    started = time.monotonic()
    while True:
        await shiryu.send({"message": "probe", "client_id": "p"})
        await shiryu.send({"message": "probe", "client_id": "q"})
        frames = [await shiryu.receive(), await shiryu.receive()]
        if frames[1]["type"] == "error":
            assert frames[1]["code"] == "rate_limited" and "slow mode" in frames[1]["detail"]
            break
        assert time.monotonic() - started < PROPAGATION_SECONDS, "slow mode did not arrive"
        await asyncio.sleep(0.25)


# Room size.


async def test_a_join_beyond_the_room_size_is_room_full_and_stays_unjoined(connect):
    await room("small", max_members=2)
    path = "/websocket/ws_chat/small"
    first, second, third = await connect(path), await connect(path), await connect(path)
    await first.join("One")
    await second.join("Two")
    error = await third.error({"type": "join", "name": "Three", "client_id": "c"})
    assert (error["code"], error["client_id"]) == ("room_full", "c")
    assert error["detail"] == "This room is full; please try again later."
    # Unjoined: it hears nothing of the room, and may try again.
    await second.send({"message": "hi"})
    await third.assert_silent()
    # A name error first: an invalid name is name_invalid even in a full room.
    assert (await third.error({"type": "join", "name": " "}))["code"] == "name_invalid"
    assert (await third.error({"type": "join", "name": "one"}))["code"] == "name_taken"
    await first.disconnect()
    assert (await third.join("Three"))["members"] == ["Two", "Three"]


async def test_a_room_size_set_in_admin_applies_within_5_s(connect):
    await room("small", max_members=0)
    path = "/websocket/ws_chat/small"
    first = await connect(path)
    await first.join("One")
    await room("small", max_members=1)
    started = time.monotonic()
    while True:
        probe = await connect(path)
        await probe.send({"type": "join", "name": "Probe"})
        frame = await probe.receive()
        await probe.disconnect()
        if frame["type"] == "error":
            assert frame["code"] == "room_full"
            break
        assert time.monotonic() - started < PROPAGATION_SECONDS, "the size did not arrive"
        await asyncio.sleep(0.25)
