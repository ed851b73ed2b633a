"""Recovery after a short disconnect, through the real router (SPEC "Nothing lost ...").

Offsets, the `joined` fields, rejoining with `resume` (replay, or
`recovered: false`), the hand-over from the replay to live frames, taking
over one's own name, and bad `resume`/`offset` input.
"""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import get_channel_layer

from chat.presence import get_presence
from chat.recovery.tokens import ResumeToken, verify
from chat.tests.test_consumer import set_limits, two_members

pytestmark = pytest.mark.django_db(transaction=True)


async def say(client, *texts: str) -> None:
    for text in texts:
        await client.send({"type": "message", "message": text})


async def messages(client, count: int) -> list[dict]:
    return [await client.receive_type("message") for _ in range(count)]


async def rejoin(connect, name: str, joined: dict, **frame) -> tuple[object, dict]:
    """A new connection that joins as `name` with `joined`'s resume token (and `frame`)."""
    client = await connect()
    await client.send({"type": "join", "name": name, "resume": joined["resume"], **frame})
    return client, await client.receive_type("joined")


async def test_offsets_grow_by_one_for_every_message_of_the_room(connect):
    shiryu, seiya = await two_members(connect)
    heard = []
    for sender, receiver in [(seiya, shiryu), (shiryu, seiya), (seiya, shiryu)]:
        await sender.send({"type": "message", "message": "m", "client_id": "c"})
        offset = (await receiver.receive_type("message"))["offset"]
        # The sender's ack carries the same offset.
        assert (await sender.receive_type("ack"))["offset"] == offset
        heard.append(offset)
    assert heard == [1, 2, 3]


async def test_joined_carries_epoch_offset_and_a_token_for_this_member(connect):
    shiryu = await connect()
    first = await shiryu.join("Shiryu")
    assert first["offset"] == 0 and "recovered" not in first
    await say(shiryu, "one", "two")
    seiya = await connect()
    joined = await seiya.join("Seiya")
    assert joined["offset"] == 2 and joined["epoch"] == first["epoch"]
    token = verify(joined["resume"], room="lobby")
    assert token is not None and token.epoch == joined["epoch"] and token.first == 2
    assert verify(joined["resume"], room="other") is None


@pytest.fixture
async def pair(connect):
    """Shiryu and Seiya in the lobby, with Seiya's `joined` frame kept."""
    shiryu = await connect()
    await shiryu.join("Shiryu")
    seiya = await connect()
    seiya_joined = await seiya.join("Seiya")
    await shiryu.receive_type("presence")
    return shiryu, seiya, seiya_joined


async def test_replay_after_a_disconnect(connect, pair):
    shiryu, seiya, joined = pair
    await say(shiryu, "before")
    last = (await seiya.receive_type("message"))["offset"]
    await seiya.disconnect()
    await shiryu.receive_type("presence")
    await say(shiryu, "gap 1", "gap 2")
    back, answer = await rejoin(connect, "Seiya", joined, offset=last)
    assert answer["recovered"] is True and answer["offset"] == last + 2
    replayed = await messages(back, 2)
    assert [m["message"] for m in replayed] == ["gap 1", "gap 2"]
    assert [m["offset"] for m in replayed] == [last + 1, last + 2]
    await say(shiryu, "live")
    assert (await back.receive_type("message"))["message"] == "live"
    await back.assert_silent()


async def test_without_offset_the_replay_starts_at_the_first_join_never_before(connect):
    shiryu = await connect()
    await shiryu.join("Shiryu")
    await say(shiryu, "before Seiya came")
    seiya = await connect()
    joined = await seiya.join("Seiya")
    await shiryu.receive_type("presence")
    await say(seiya, "mine")
    await say(shiryu, "yours")
    await shiryu.receive_type("message")
    await seiya.receive_type("message")
    await seiya.disconnect()
    # offset 0 asks for everything; the token's first join still bounds it.
    for frame in ({}, {"offset": 0}):
        back, answer = await rejoin(connect, "Seiya", joined, **frame)
        assert answer["recovered"] is True
        replayed = await messages(back, 2)
        # Its own message included: the page shows each id once.
        assert [m["message"] for m in replayed] == ["mine", "yours"]
        await back.assert_silent()
        await back.disconnect()


async def test_a_recovered_rejoin_keeps_the_first_join_offset_in_its_new_token(connect, pair):
    shiryu, seiya, joined = pair
    await say(shiryu, "one")
    await seiya.receive_type("message")
    await seiya.disconnect()
    back, answer = await rejoin(connect, "Seiya", joined)
    assert answer["recovered"] is True
    assert verify(answer["resume"], room="lobby").first == joined["offset"]
    await back.receive_type("message")
    # A plain join starts anew.
    await back.disconnect()
    fresh = await connect()
    plain = await fresh.join("Seiya")
    assert verify(plain["resume"], room="lobby").first == plain["offset"] == 1


async def test_a_live_message_during_the_replay_is_neither_lost_nor_doubled(connect, pair):
    shiryu, seiya, joined = pair
    await seiya.disconnect()
    assert (await shiryu.receive_type("presence"))["event"] == "leave"
    await say(shiryu, "missed")
    layer = get_channel_layer()
    read_history = layer.group_history

    async def history_with_a_message_arriving(group, **options):
        # Another member's message reaches the room after this member joined
        # the group and before its history is read: it is queued live and in
        # the history too.
        await shiryu.send({"type": "message", "message": "during the replay", "client_id": "d"})
        # Acknowledged: numbered, and queued for every member of the group.
        await shiryu.receive_type("ack")
        return await read_history(group, **options)

    layer.group_history = history_with_a_message_arriving
    try:
        back, answer = await rejoin(connect, "Seiya", joined)
    finally:
        del layer.group_history
    assert answer["recovered"] is True
    got = await messages(back, 2)
    assert [m["message"] for m in got] == ["missed", "during the replay"]
    await say(shiryu, "after")
    assert (await back.receive_type("message"))["message"] == "after"
    await back.assert_silent()


@pytest.mark.parametrize(
    "case",
    ["forged", "another room", "another epoch", "recovery off", "gap past the window", "ahead"],
)
async def test_recovered_false_and_nothing_replayed(connect, pair, case):
    shiryu, seiya, joined = pair
    await seiya.disconnect()
    await shiryu.receive_type("presence")
    token = verify(joined["resume"], room="lobby")
    frame = {}
    if case == "forged":
        joined = {**joined, "resume": joined["resume"][:-4] + "AAAA"}
    elif case == "another room":
        other = ResumeToken(room="games", epoch=token.epoch, member=token.member, first=0)
        joined = {**joined, "resume": other.sign()}
    elif case == "another epoch":
        other = ResumeToken(room="lobby", epoch="gone", member=token.member, first=token.first)
        joined = {**joined, "resume": other.sign()}
    elif case == "recovery off":
        await set_limits(recovery_messages=0)
    elif case == "gap past the window":
        await set_limits(recovery_messages=2)
    elif case == "ahead":
        frame = {"offset": 99}
    await say(shiryu, "m1", "m2", "m3")
    back, answer = await rejoin(connect, "Seiya", joined, **frame)
    assert answer["recovered"] is False
    # Its join is announced: the room hears Seiya come back.
    assert (await shiryu.receive_type("presence"))["event"] == "join"
    await back.assert_silent()
    await say(shiryu, "live")
    assert (await back.receive_type("message"))["message"] == "live"


async def test_the_window_holds_no_message_older_than_recovery_seconds(connect, pair):
    shiryu, seiya, joined = pair
    await set_limits(recovery_seconds=1)
    await seiya.disconnect()
    await say(shiryu, "old")
    layer = get_channel_layer()
    # Poll the window itself until the message has aged out (bounded).
    deadline = 50
    while deadline:
        history = await layer.group_history(
            "chat.lobby", after=joined["offset"], keep=100, seconds=1
        )
        if history.texts is None:
            break
        deadline -= 1
        await asyncio.sleep(0.1)
    assert deadline, "the message never left the window"
    _back, answer = await rejoin(connect, "Seiya", joined)
    assert answer["recovered"] is False


async def test_a_rejoin_takes_its_own_name_over_and_the_room_hears_nothing(connect, pair):
    shiryu, seiya, joined = pair
    # Seiya's first connection is still open (half-open, as far as the server knows).
    back, answer = await rejoin(connect, "Seiya", joined)
    assert answer["recovered"] is True and answer["members"] == ["Shiryu", "Seiya"]
    assert await seiya.closed_with() == 4409
    await shiryu.assert_silent()
    await say(back, "still me")
    assert (await shiryu.receive_type("message"))["name"] == "Seiya"
    assert await get_presence().counts() == {"lobby": 2}


async def test_somebody_else_asking_for_a_held_name_still_gets_name_taken(connect, pair):
    _shiryu, seiya, _joined = pair
    other = await connect()
    other_joined = await other.join("Ikki")
    await other.disconnect()
    # A valid token, but not the one of the connection holding "Seiya".
    impostor = await connect()
    error = await impostor.error(
        {"type": "join", "name": "Seiya", "resume": other_joined["resume"]}
    )
    assert error["code"] == "name_taken"
    # Seiya heard Ikki come and go, and nothing else: it was not replaced.
    assert [(await seiya.receive_type("presence"))["event"] for _ in range(2)] == ["join", "leave"]
    await seiya.assert_silent()


@pytest.mark.parametrize(
    "fields",
    [
        {"resume": 5},
        {"resume": "x" * 513},
        {"resume": "t", "offset": -1},
        {"resume": "t", "offset": 1.5},
        {"resume": "t", "offset": True},
        {"resume": "t", "offset": "3"},
        {"offset": 3},
    ],
)
async def test_a_bad_resume_or_offset_is_invalid_message_and_changes_nothing(connect, fields):
    client = await connect()
    error = await client.error({"type": "join", "name": "Seiya", **fields})
    assert error["code"] == "invalid_message"
    # Still open and unjoined: a good join works.
    assert (await client.join("Seiya"))["name"] == "Seiya"
