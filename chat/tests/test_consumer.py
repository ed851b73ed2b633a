"""The wire protocol, row by row, through the real router and consumer."""

from __future__ import annotations

import gc
import json
import time

import pytest
from channels.testing import WebsocketCommunicator

from chat import protocol
from chat.consumers import ChatConsumer
from chat.models import ChatSettings
from chatsite.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


async def set_limits(**values) -> None:
    from asgiref.sync import sync_to_async

    from chat.conf import expire_config

    def save() -> None:
        settings = ChatSettings.load()
        for key, value in values.items():
            setattr(settings, key, value)
        settings.full_clean()
        settings.save()

    await sync_to_async(save)()
    expire_config()


async def two_members(connect):
    """Shiryu and Seiya joined in the lobby; Shiryu has heard Seiya join."""
    shiryu, seiya = await connect(), await connect()
    await shiryu.join("Shiryu")
    await seiya.join("Seiya")
    await shiryu.receive_type("presence")
    return shiryu, seiya


# The tutorial flow.


async def test_unjoined_client_receives_nothing(connect):
    lurker = await connect()
    seiya = await connect()
    await seiya.send({"name": "Seiya", "message": "Olá"})
    await seiya.receive_type("joined")
    await lurker.assert_silent()


async def test_tutorial_message_joins_and_relays_to_others_never_the_sender(connect):
    shiryu = await connect()
    await shiryu.join("Shiryu")
    seiya = await connect()
    await seiya.send({"name": "Seiya", "message": "Olá"})
    joined = await seiya.receive_type("joined")
    resume = joined.pop("resume")
    assert isinstance(resume, str) and 0 < len(resume) <= 512
    assert isinstance(joined.pop("epoch"), str)
    # The room's offset before the joining message: the first message is offset 1.
    assert joined == {
        "type": "joined",
        "room": "lobby",
        "name": "Seiya",
        "members": ["Shiryu", "Seiya"],
        "offset": 0,
    }
    assert await shiryu.receive() == {
        "type": "presence",
        "event": "join",
        "name": "Seiya",
        "count": 2,
    }
    message = await shiryu.receive_type("message")
    assert message["room"] == "lobby"
    assert message["name"] == "Seiya"
    assert message["message"] == "Olá"
    assert message["offset"] == 1
    assert isinstance(message["id"], str) and message["id"]
    assert abs(message["ts"] - time.time() * 1000) < 5000
    await seiya.assert_silent()


async def test_explicit_message_after_join_may_omit_name(connect):
    shiryu, seiya = await two_members(connect)
    await seiya.send({"type": "message", "message": "first"})
    await seiya.send({"type": "message", "name": "  Seiya ", "message": "second"})
    assert (await shiryu.receive_type("message"))["message"] == "first"
    assert (await shiryu.receive_type("message"))["message"] == "second"
    await seiya.assert_silent()


async def test_ack_only_when_client_id_given(connect):
    shiryu, seiya = await connect(), await connect()
    await shiryu.join("Shiryu")
    await seiya.join("Seiya")
    await seiya.send({"type": "message", "message": "hi", "client_id": "m-1"})
    ack = await seiya.receive_type("ack")
    relayed = [await shiryu.receive_type("presence"), await shiryu.receive_type("message")][1]
    assert ack == {
        "type": "ack",
        "client_id": "m-1",
        "id": relayed["id"],
        "ts": relayed["ts"],
        "offset": relayed["offset"],
    }
    await seiya.send({"type": "message", "message": "no ack"})
    await shiryu.receive_type("message")
    await seiya.assert_silent()


async def test_message_ids_are_unique(connect):
    shiryu, seiya = await two_members(connect)
    for index in range(5):
        await seiya.send({"message": f"m{index}"})
    ids = {(await shiryu.receive_type("message"))["id"] for _ in range(5)}
    assert len(ids) == 5


async def test_one_senders_messages_arrive_in_order_once(connect):
    await set_limits(rate_limit_per_second=0)
    shiryu, seiya = await two_members(connect)
    for index in range(200):
        await seiya.send({"message": str(index)})
    received = [(await shiryu.receive_type("message"))["message"] for _ in range(200)]
    assert received == [str(index) for index in range(200)]
    await shiryu.assert_silent()


async def test_join_without_message_announces_presence(connect):
    shiryu, seiya = await connect(), await connect()
    assert (await shiryu.join("Shiryu"))["members"] == ["Shiryu"]
    assert (await seiya.join("  Seiya  "))["name"] == "Seiya"
    assert await shiryu.receive() == {
        "type": "presence",
        "event": "join",
        "name": "Seiya",
        "count": 2,
    }
    await seiya.assert_silent()


async def test_leave_is_announced_with_count(connect):
    shiryu, seiya = await two_members(connect)
    await seiya.disconnect()
    assert await shiryu.receive() == {
        "type": "presence",
        "event": "leave",
        "name": "Seiya",
        "count": 1,
    }


async def test_disconnect_makes_no_thread_hop(connect, monkeypatch):
    """A reconnect storm must not queue one database-closing thread hop per leave."""
    import channels.generic.websocket

    hops = []

    async def record_hop() -> None:
        hops.append("hop")

    monkeypatch.setattr(channels.generic.websocket, "aclose_old_connections", record_hop)
    shiryu, seiya = await two_members(connect)
    await seiya.disconnect()
    assert (await shiryu.receive_type("presence"))["event"] == "leave"
    assert hops == []


async def test_a_closed_connection_is_freed_without_the_cycle_collector(connect):
    """No reference cycle keeps a closed member's consumer alive.

    The server makes full collections rare (chatsite.gc_tuning), so anything
    a cycle holds would outlive its connection by thousands of connections.
    """
    shiryu, seiya = await two_members(connect)
    gc.collect()
    gc.disable()
    try:
        await seiya.disconnect()
        await shiryu.receive_type("presence")
        alive = [o for o in gc.get_objects() if isinstance(o, ChatConsumer) and o.name is None]
    finally:
        gc.enable()
    assert alive == []


async def test_typing_reaches_others_and_is_throttled(connect):
    shiryu, seiya = await two_members(connect)
    await seiya.send({"type": "typing"})
    await seiya.send({"type": "typing"})
    await seiya.send({"type": "message", "message": "done"})
    assert await shiryu.receive() == {"type": "typing", "name": "Seiya"}
    # The second typing event fell inside the interval and was dropped silently.
    assert (await shiryu.receive())["type"] == "message"
    await seiya.assert_silent()


async def test_typing_interval_comes_from_settings(connect):
    await set_limits(typing_interval_seconds=0)
    shiryu, seiya = await two_members(connect)
    await seiya.send({"type": "typing"})
    await seiya.send({"type": "typing"})
    await shiryu.receive_type("typing")
    await shiryu.receive_type("typing")


async def test_ping_before_and_after_joining_is_answered_never_relayed(connect):
    shiryu, seiya = await connect(), await connect()
    await shiryu.join("Shiryu")
    await seiya.send({"type": "ping"})
    assert await seiya.receive() == {"type": "pong"}
    await seiya.join("Seiya")
    await shiryu.receive_type("presence")
    await seiya.send({"type": "ping"})
    assert await seiya.receive() == {"type": "pong"}
    await shiryu.assert_silent()


async def test_rooms_are_isolated(connect):
    lobby = await connect()
    other = await connect("/websocket/ws_chat/other")
    also_other = await connect("/websocket/ws_chat/other")
    await lobby.join("Seiya")
    # Names are per room.
    assert (await other.join("Seiya"))["room"] == "other"
    await also_other.join("Shun")
    await other.receive_type("presence")
    await also_other.send({"message": "only in other"})
    assert (await other.receive_type("message"))["room"] == "other"
    await lobby.assert_silent()


# Names.


async def test_taken_name_case_insensitive_and_client_may_retry(connect):
    seiya, rival = await connect(), await connect()
    await seiya.join("Seiya")
    error = await rival.error({"type": "join", "name": "sEIYA ", "client_id": "j"})
    assert error["code"] == "name_taken"
    assert error["client_id"] == "j"
    assert "sEIYA" in error["detail"]
    # Still unjoined: receives nothing from the room, free to pick another name.
    await seiya.send({"message": "hello"})
    await rival.assert_silent()
    assert (await rival.join("Ikki"))["members"] == ["Seiya", "Ikki"]


async def test_a_look_alike_of_a_present_name_is_taken(connect):
    seiya, rival = await connect(), await connect()
    await seiya.join("Seiya")
    look_alike = "Se\u0456ya"  # a Cyrillic i
    error = await rival.error({"type": "join", "name": look_alike})
    assert error["code"] == "name_taken"
    assert look_alike in error["detail"]
    assert (await rival.error({"name": look_alike, "message": "I am Seiya"}))["code"] == (
        "name_taken"
    )
    await seiya.assert_silent()
    # Once Seiya has gone, the look-alike is free, and relayed as it was typed.
    await seiya.disconnect()
    assert (await rival.join(look_alike))["members"] == [look_alike]


async def test_a_name_with_a_bidi_override_is_invalid(connect):
    """U+202E makes "nimda" show as "admin"; other format characters stay allowed."""
    client = await connect()
    error = await client.error({"type": "join", "name": "\u202enimda"})
    assert error["code"] == "name_invalid"
    assert "reorder" in error["detail"]
    assert (await client.join("Ikki\u200e"))["name"] == "Ikki\u200e"


async def test_taken_name_in_tutorial_message_relays_nothing(connect):
    seiya, rival = await connect(), await connect()
    await seiya.join("Seiya")
    assert (await rival.error({"name": "Seiya", "message": "I am Seiya"}))["code"] == "name_taken"
    await seiya.assert_silent()


async def test_name_freed_on_disconnect(connect):
    first, second = await connect(), await connect()
    await first.join("Hyoga")
    await first.disconnect()
    assert (await second.join("hyoga"))["name"] == "hyoga"


@pytest.mark.parametrize(
    "name",
    ["", "   ", "x" * 33, "bad\x07bell", "tab\tinside"],
    ids=["empty", "blank", "too-long", "bell", "tab"],
)
async def test_invalid_names(connect, name):
    client = await connect()
    error = await client.error({"type": "join", "name": name})
    assert error["code"] == "name_invalid"
    assert error["detail"]


async def test_name_length_counts_code_points_and_allows_joiners(connect):
    client = await connect()
    family = "👩\u200d👩\u200d👧"  # 5 code points, one of them U+200D (format, not control)
    name = family + "x" * (32 - len(family))
    assert (await client.join(name))["name"] == name


async def test_name_mismatch_relays_nothing(connect):
    shiryu, seiya = await two_members(connect)
    error = await seiya.error({"name": "Shiryu", "message": "I am Shiryu", "client_id": "x"})
    assert error["code"] == "name_mismatch"
    assert error["client_id"] == "x"
    await shiryu.assert_silent()


async def test_second_join_is_refused_and_changes_nothing(connect):
    shiryu, seiya = await two_members(connect)
    assert (await seiya.error({"type": "join", "name": "Ikki"}))["code"] == "already_joined"
    await seiya.send({"message": "still Seiya"})
    assert (await shiryu.receive_type("message"))["name"] == "Seiya"


# Bad input: one test per error code; the connection stays open and others hear nothing.


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "invalid_json"),
        ("", "invalid_json"),
        ("[1, 2]", "invalid_frame"),
        ('"text"', "invalid_frame"),
        ({"type": "message"}, "invalid_message"),
        ({"type": "message", "message": 5}, "invalid_message"),
        ({"type": "message", "message": "x", "name": 5}, "invalid_message"),
        ({"type": "join"}, "invalid_message"),
        ({"type": "shout", "message": "x"}, "invalid_message"),
        ({"type": 7}, "invalid_message"),
        ({"type": "ping", "client_id": 5}, "invalid_message"),
        ({"type": "typing"}, "not_joined"),
        ({"type": "message", "message": "who am I"}, "not_joined"),
    ],
)
async def test_bad_frames_get_errors_and_keep_the_connection(connect, frame, code):
    listener, client = await connect(), await connect()
    await listener.join("Listener")
    error = await client.error(frame)
    assert error["code"] == code
    assert isinstance(error["detail"], str) and error["detail"].endswith(".")
    await client.send({"type": "ping"})
    assert await client.receive() == {"type": "pong"}
    await listener.assert_silent()


async def test_binary_frame_is_invalid_frame(connect):
    client = await connect()
    await client.communicator.send_to(bytes_data=b"\x00\x01")
    assert (await client.receive_type("error"))["code"] == "invalid_frame"


@pytest.mark.parametrize(
    ("message", "code"),
    [("", "message_empty"), (" \n\t ", "message_empty"), ("x" * 2001, "message_too_long")],
)
async def test_bad_messages_after_joining(connect, message, code):
    shiryu, seiya = await two_members(connect)
    error = await seiya.error({"message": message, "client_id": "c1"})
    assert error["code"] == code
    assert error["client_id"] == "c1"
    await shiryu.assert_silent()


async def test_longest_message_is_accepted(connect):
    shiryu, seiya = await two_members(connect)
    await seiya.send({"message": "é" * 2000})
    assert len((await shiryu.receive_type("message"))["message"]) == 2000


async def test_bad_first_message_leaves_connection_unjoined(connect):
    shiryu, seiya = await connect(), await connect()
    await shiryu.join("Shiryu")
    assert (await seiya.error({"name": "Seiya", "message": "  "}))["code"] == "message_empty"
    await shiryu.assert_silent()
    # The name was not kept: Seiya can still join under it.
    assert (await seiya.join("Seiya"))["members"] == ["Shiryu", "Seiya"]


async def test_error_order_type_then_name_then_message(connect):
    seiya, client = await connect(), await connect()
    await seiya.join("Seiya")
    # Wrong type of message beats a bad name.
    assert (await client.error({"name": "", "message": 3}))["code"] == "invalid_message"
    # A bad name beats a bad message.
    assert (await client.error({"name": "", "message": ""}))["code"] == "name_invalid"
    # A taken name beats a bad message.
    assert (await client.error({"name": "seiya", "message": ""}))["code"] == "name_taken"


async def test_rate_limit_burst_then_refill(connect):
    shiryu, seiya = await two_members(connect)
    for index in range(10):
        await seiya.send({"message": f"burst {index}", "client_id": str(index)})
        await seiya.receive_type("ack")
    error = await seiya.error({"message": "one too many", "client_id": "11"})
    assert error["code"] == "rate_limited"
    assert error["client_id"] == "11"
    relayed = [(await shiryu.receive_type("message"))["message"] for _ in range(10)]
    assert relayed == [f"burst {index}" for index in range(10)]
    await shiryu.assert_silent()


async def test_rate_limit_zero_turns_it_off(connect):
    await set_limits(rate_limit_per_second=0)
    shiryu, seiya = await connect(), await connect()
    await shiryu.join("Shiryu")
    await seiya.join("Seiya")
    for index in range(30):
        await seiya.send({"message": str(index), "client_id": str(index)})
        assert (await seiya.receive())["type"] == "ack"


async def test_join_typing_and_ping_use_no_tokens(connect):
    await set_limits(rate_limit_per_second=1, rate_limit_burst=1)
    seiya = await connect()
    await seiya.join("Seiya")
    for _ in range(5):
        await seiya.send({"type": "typing"})
        await seiya.send({"type": "ping"})
        await seiya.receive_type("pong")
    await seiya.send({"message": "the one token", "client_id": "a"})
    await seiya.receive_type("ack")
    assert (await seiya.error({"message": "no token left"}))["code"] == "rate_limited"


async def test_too_many_bad_frames_close_with_4008(connect):
    client = await connect()
    for _ in range(50):
        assert (await client.error("nope"))["code"] == "invalid_json"
    await client.send_text("nope")
    assert (await client.receive_type("error"))["code"] == "invalid_json"
    assert await client.closed_with() == protocol.CLOSE_TOO_MANY_ERRORS


async def test_rate_limited_errors_do_not_count_towards_4008(connect):
    await set_limits(rate_limit_per_second=0.001, rate_limit_burst=1)
    client = await connect()
    await client.join("Spammer")
    await client.send({"message": "first"})
    for _ in range(60):
        assert (await client.error({"message": "again"}))["code"] == "rate_limited"
    await client.send({"type": "ping"})
    assert await client.receive() == {"type": "pong"}


async def test_oversized_frame_without_server_limit_closes_4009(connect):
    # Real servers close these with 1009 first (test_servers); this is the
    # consumer's own guard for a server started without the limit.
    client = await connect()
    await client.send_text('{"message": "' + "x" * (64 * 1024) + '"}')
    assert await client.closed_with() == protocol.CLOSE_TOO_BIG


# Handshake: origin and paths.


@pytest.mark.parametrize(
    "origin", [b"http://localhost:8000", b"http://127.0.0.1", b"https://[::1]:8443"]
)
async def test_allowed_origin_accepted(connect, origin):
    client = await connect(headers=[(b"origin", origin)])
    await client.send({"type": "ping"})
    assert await client.receive() == {"type": "pong"}


async def test_missing_origin_accepted(connect):
    client = await connect(headers=[])
    await client.send({"type": "ping"})
    assert await client.receive() == {"type": "pong"}


@pytest.mark.parametrize(
    "path",
    [
        "/websocket/ws_chat/Bad",
        "/websocket/ws_chat/-leading-dash",
        "/websocket/ws_chat/" + "a" * 49,
        "/websocket/elsewhere",
    ],
)
async def test_bad_paths_refused_at_handshake(path):
    communicator = WebsocketCommunicator(application, path)
    connected, _ = await communicator.connect()
    assert not connected


async def test_foreign_origin_refused():
    communicator = WebsocketCommunicator(
        application, "/websocket/ws_chat", headers=[(b"origin", b"http://evil.example")]
    )
    connected, _ = await communicator.connect()
    assert not connected


# Ghost members: a connection's name must be freed however it ends.


async def test_events_queued_after_close_do_not_leave_a_ghost(connect):
    shiryu, spammer = await connect(), await connect()
    await shiryu.join("Shiryu")
    await spammer.join("Spammer")
    await shiryu.receive_type("presence")
    for _ in range(51):
        await spammer.send_text("nope")
    # Room traffic keeps arriving for the closing connection.
    await shiryu.send({"message": "are you there?"})
    await shiryu.send({"type": "typing"})
    codes = []
    while (output := await spammer.communicator.receive_output(2))["type"] != "websocket.close":
        codes.append(json.loads(output["text"])["type"])
    assert output["code"] == protocol.CLOSE_TOO_MANY_ERRORS
    # Everything before the close was an answer or room traffic; nothing after it.
    assert codes.count("error") == 51
    assert set(codes) <= {"error", "message", "typing"}
    await spammer.assert_silent()
    await spammer.disconnect()
    leave = await shiryu.receive_type("presence")
    assert leave["event"] == "leave" and leave["count"] == 1


async def test_member_that_falls_behind_is_told_by_close_4029(connect):
    from channels.layers import get_channel_layer

    from chat.presence import get_presence

    listener = await connect()
    await listener.join("Slow")
    layer = get_channel_layer()
    # Faster than the member can read: the layer gets no turn to hand events over.
    sent = layer.capacity + 5
    for index in range(sent):
        text = f'{{"type":"typing","name":"{index}"}}'
        await layer.group_send("chat.lobby", {"type": "chat.broadcast", "sender": "", "text": text})
    # The layer's alarm rang as the queue overflowed: the member left the
    # room then, and what was queued is not sent. What went out before is a
    # run from the start, in order; then the close.
    heard = []
    while (output := await listener.communicator.receive_output())["type"] == "websocket.send":
        heard.append(json.loads(output["text"])["name"])
    assert output == {"type": "websocket.close", "code": protocol.CLOSE_FELL_BEHIND}
    assert len(heard) < layer.capacity
    assert heard == [str(index) for index in range(len(heard))]
    # Left while still connected: the name is free before the socket is gone.
    assert await get_presence().counts() == {}


async def test_a_layer_that_lost_redis_closes_its_members_with_4503(connect):
    from channels.layers import get_channel_layer

    member = await connect()
    await member.join("Seiya")
    watcher = await connect()
    await watcher.join("Shiryu")
    await member.receive_type("presence")
    # What chat.layers.redis sends every local channel when Redis fails.
    assert get_channel_layer().notify_all({"type": "layer.unavailable"}) == 2
    assert await member.closed_with() == protocol.CLOSE_UNAVAILABLE
    assert await watcher.closed_with() == protocol.CLOSE_UNAVAILABLE
