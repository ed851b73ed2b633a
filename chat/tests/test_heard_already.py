"""What a member has heard already is not told again, and nothing else is dropped as such.

A join is published after its claim, and across processes the publish can
reach Redis after another member's claim and subscription: that member's
`joined` list has the name already, and the join would then come a second
time, with a stale count. The registry numbers every join and leave (its
serial); a member drops an event numbered at or below its own claim's.

A message is dropped when its offset is at or below the member's latest,
but only within one run of offsets (epoch): when Redis loses a room's
window, the offsets start again at 1, and members who stayed hear them.
"""

from __future__ import annotations

import pytest
from channels.layers import get_channel_layer

from chat import events
from chat.presence import get_presence
from chat.presence.announce import announce
from chat.presence.base import Claim, Release
from chat.rooms import group_name

from .frame_sink import Sink

pytestmark = pytest.mark.django_db(transaction=True)

ROOM = "lobby"
ELSEWHERE = "specific.elsewhere!member"


async def announce_late(event: str, name: str, outcome: Claim | Release) -> None:
    """Announce what the registry did earlier, as a publish still on its way would arrive."""
    presence = get_presence()
    await announce(
        feed=presence.feed,
        layer=get_channel_layer(),
        room=ROOM,
        event=event,
        name=name,
        outcome=outcome,
        sender=ELSEWHERE,
    )


@pytest.mark.parametrize("delivery", ["queued", "written"])
async def test_a_join_announced_after_a_member_joined_is_not_told_to_it(connect, delivery):
    seiya = await connect()
    await seiya.join("Seiya")
    # Shiryu's claim is made; its join is not announced yet.
    presence = get_presence()
    claim = await presence.claim(room=ROOM, name="Shiryu", member=ELSEWHERE)
    sink = Sink()
    hyoga = await connect(extensions=sink.extensions() if delivery == "written" else None)
    joined = await hyoga.join("Hyoga")
    assert joined["members"] == ["Seiya", "Shiryu", "Hyoga"]
    assert (await seiya.receive_type("presence"))["name"] == "Hyoga"

    await announce_late("join", "Shiryu", claim)
    # Seiya joined before Shiryu's claim: it hears of it, once.
    assert await seiya.receive_type("presence") == {
        "type": "presence",
        "event": "join",
        "name": "Shiryu",
        "count": 2,
    }
    released = await presence.release(room=ROOM, name="Shiryu", member=ELSEWHERE)
    assert released is not None
    await announce_late("leave", "Shiryu", released)
    leave = {"type": "presence", "event": "leave", "name": "Shiryu", "count": 2}
    assert await seiya.receive_type("presence") == leave
    # Hyoga hears the leave, which came after its claim, and nothing before it.
    if delivery == "written":
        assert sink.received() == [leave]
    else:
        assert await hyoga.receive_type("presence") == leave
    await hyoga.assert_silent()


async def test_a_leave_announced_after_a_member_joined_is_not_told_to_it(connect):
    seiya = await connect()
    await seiya.join("Seiya")
    presence = get_presence()
    await presence.claim(room=ROOM, name="Shiryu", member=ELSEWHERE)
    released = await presence.release(room=ROOM, name="Shiryu", member=ELSEWHERE)
    assert released is not None
    hyoga = await connect()
    assert (await hyoga.join("Hyoga"))["members"] == ["Seiya", "Hyoga"]
    await seiya.receive_type("presence")

    await announce_late("leave", "Shiryu", released)
    assert (await seiya.receive_type("presence"))["event"] == "leave"
    await hyoga.assert_silent()


async def test_a_rejoin_by_resume_token_drops_what_its_list_has_already(connect):
    """A take-over is no join: its list is the room as of the latest serial."""
    seiya = await connect()
    resume = (await seiya.join("Seiya"))["resume"]
    presence = get_presence()
    claim = await presence.claim(room=ROOM, name="Shiryu", member=ELSEWHERE)
    again = await connect()
    await again.send({"type": "join", "name": "Seiya", "resume": resume})
    assert (await again.receive_type("joined"))["members"] == ["Seiya", "Shiryu"]
    assert await seiya.closed_with() == 4409

    await announce_late("join", "Shiryu", claim)
    await again.assert_silent()
    await presence.release(room=ROOM, name="Shiryu", member=ELSEWHERE)


async def test_every_join_and_leave_takes_a_later_serial(make_registry):
    registry = make_registry()
    claims = [
        await registry.claim(room="lobby", name="Seiya", member="m1"),
        await registry.claim(room="other", name="Shiryu", member="m2"),
        await registry.claim(room="lobby", name="Hyoga", member="m3"),
    ]
    released = await registry.release(room="lobby", name="Seiya", member="m1")
    assert released is not None
    serials = [claim.serial for claim in claims] + [released.serial]
    assert serials == sorted(set(serials)) and serials[0] > 0, serials
    # A refused claim and a take-over (nobody joins) take none: the latest stands.
    assert not (await registry.claim(room="lobby", name="hyoga", member="m4")).won
    takeover = await registry.claim(room="lobby", name="Hyoga", member="m5", takeover="m3")
    assert (takeover.replaced, takeover.serial) == ("m3", released.serial)
    last = await registry.release(room="other", name="Shiryu", member="m2")
    assert last is not None and last.serial > released.serial


@pytest.mark.redis
async def test_processes_on_one_redis_share_the_serials(make_presence):
    """One counter in Redis: the order Redis ran the claims in, whichever process asked."""
    first, second = make_presence(), make_presence()
    serials = []
    for index in range(6):
        registry = (first, second)[index % 2]
        serials.append(
            (await registry.claim(room="lobby", name=f"N{index}", member=f"m{index}")).serial
        )
    assert serials == sorted(set(serials)), serials


def numbered(offset: int, epoch: str, text: str) -> dict:
    """A room message as the Redis layer's subscriber hands it over: with its run's epoch."""
    frame = {"type": "message", "room": ROOM, "name": "Shiryu", "message": text, "offset": offset}
    event = events.message_event(frame, sender=ELSEWHERE, ack=None)
    return {**event, "offset": offset, "epoch": epoch}


@pytest.mark.parametrize("delivery", ["queued", "written"])
async def test_a_new_run_of_offsets_is_heard_and_a_repeat_of_the_same_run_is_not(connect, delivery):
    """Offsets say what a member had already only within one run (epoch) of them."""
    sink = Sink()
    seiya = await connect(extensions=sink.extensions() if delivery == "written" else None)
    epoch = (await seiya.join("Seiya"))["epoch"]
    layer, group = get_channel_layer(), group_name(ROOM)
    sent = [numbered(1, epoch, "a"), numbered(2, epoch, "b"), numbered(2, epoch, "b again")]
    # Redis lost the window: the room counts from 1 again, in a new epoch.
    sent += [numbered(1, "new", "c"), numbered(2, "new", "d"), numbered(2, "new", "d again")]
    for event in sent:
        await layer.group_send(group, event)
    # Written by the server as they came, until the new run's first message,
    # which goes the queued way (chat_broadcast), and everything after it too.
    heard = sink.received()
    assert [frame["message"] for frame in heard] == (["a", "b"] if delivery == "written" else [])
    while len(heard) < 4:
        heard.append(await seiya.receive_type("message"))
    assert [(frame["message"], frame["offset"]) for frame in heard] == [
        ("a", 1),
        ("b", 2),
        ("c", 1),
        ("d", 2),
    ]
    await seiya.assert_silent()
    assert sink.received() == []
