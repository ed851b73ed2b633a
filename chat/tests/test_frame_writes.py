"""A room's frames written straight to the socket ("chat.frames", chat.uvicorn_frames).

Through the real router and consumer, with a server's write stood in by a
sink that parses what it is given with websockets' own client protocol.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.frames import Opcode

from chat import frames

from .frame_sink import Sink, parsed

pytestmark = pytest.mark.django_db(transaction=True)


@given(st.text(max_size=70_000))
def test_text_frame_is_what_a_client_reads_as_that_text(text):
    (frame,) = parsed(frames.text_frame(text))
    assert (frame.opcode, frame.fin, frame.data.decode()) == (Opcode.TEXT, True, text)


@pytest.mark.parametrize("size", [0, 125, 126, 65_535, 65_536])
def test_text_frame_lengths_at_each_header_size(size):
    (frame,) = parsed(frames.text_frame("é" * (size // 2) + "x" * (size % 2)))
    assert len(frame.data) == size


async def written_member(connect, name: str) -> tuple[Any, Sink]:
    sink = Sink()
    client = await connect(extensions=sink.extensions())
    await client.join(name)
    return client, sink


async def test_room_frames_reach_a_member_through_the_servers_write(connect):
    seiya, sink = await written_member(connect, "Seiya")
    shiryu = await connect()
    await shiryu.join("Shiryu")
    await shiryu.send({"type": "message", "message": "Olá", "client_id": "c1"})
    ack = await shiryu.receive_type("ack")
    # The ack is the sender's own: it came the ASGI way.
    assert ack["client_id"] == "c1"
    presence, message = sink.received()
    assert presence == {"type": "presence", "event": "join", "name": "Shiryu", "count": 2}
    assert message["type"] == "message" and message["message"] == "Olá"
    assert message["offset"] == ack["offset"]
    # Nothing came the other way too.
    await seiya.assert_silent()


async def test_a_members_own_message_is_acknowledged_the_asgi_way(connect):
    seiya, sink = await written_member(connect, "Seiya")
    await seiya.send({"type": "message", "message": "mine", "client_id": "c2"})
    ack = await seiya.receive_type("ack")
    assert ack["client_id"] == "c2"
    assert sink.received() == []


async def test_refused_writes_go_the_asgi_way_and_the_order_holds(connect):
    seiya, sink = await written_member(connect, "Seiya")
    shiryu = await connect()
    await shiryu.join("Shiryu")
    assert [frame["type"] for frame in sink.received()] == ["presence"]
    for round_, open_ in enumerate([False, True, False, True]):
        sink.open = open_
        for index in range(3):
            text = f"{round_}.{index}"
            await shiryu.send({"type": "message", "message": text, "client_id": text})
            # Acknowledged once the room has delivered it to every member.
            assert (await shiryu.receive_type("ack"))["client_id"] == text
        if not open_:
            for index in range(3):
                assert (await seiya.receive_type("message"))["message"] == f"{round_}.{index}"
        await seiya.assert_silent()
    # Written while open, and only those: each once, in the room's order.
    written = [frame["message"] for frame in sink.received()]
    assert written == ["1.0", "1.1", "1.2", "3.0", "3.1", "3.2"]


async def test_a_member_that_left_gets_nothing_written(connect):
    seiya, sink = await written_member(connect, "Seiya")
    shiryu = await connect()
    await shiryu.join("Shiryu")
    sink.received()
    await seiya.disconnect()
    await shiryu.send({"type": "message", "message": "after", "client_id": "c3"})
    while (await shiryu.receive())["type"] != "ack":
        pass
    assert sink.received() == []
