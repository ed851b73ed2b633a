"""Properties of the wire protocol: any payload at all is a frame or a ProtocolError.

What a client can put in a WebSocket frame is unbounded, so these draw it:
any text (lone surrogates too: a server hands the consumer whatever its
UTF-8 decoder let through), any bytes, JSON of any shape and depth, numbers
beyond every float, keys given twice, and valid frames with one thing
broken. Whatever comes in, `decode`, `parse` and the checks after them answer
with a ProtocolError and nothing else; and every valid frame comes back
from encode and decode as it went in.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from chat import protocol
from chat.protocol import JoinFrame, MessageFrame, PingFrame, ProtocolError, TypingFrame

# SPEC "Bad input": the codes a frame may earn before it reaches a room.
FRAME_CODES = {
    protocol.INVALID_JSON,
    protocol.INVALID_FRAME,
    protocol.INVALID_MESSAGE,
    protocol.NAME_INVALID,
    protocol.MESSAGE_EMPTY,
    protocol.MESSAGE_TOO_LONG,
}
# The defaults a fresh install checks names and messages against.
MAX_NAME_LENGTH = 32
MAX_MESSAGE_LENGTH = 2000

# orjson's own limit is 1024 levels; beyond it is where a parser can fail otherwise.
DEEPER_THAN_ANY_LIMIT = 5000


def validate(text: str | None, data: bytes | None = None) -> protocol.ClientFrame | None:
    """Everything the consumer does to a frame before it needs the room."""
    frame = protocol.parse(protocol.decode(text, data))
    if isinstance(frame, JoinFrame | MessageFrame) and frame.name is not None:
        protocol.clean_name(frame.name, max_length=MAX_NAME_LENGTH, client_id=frame.client_id)
    if isinstance(frame, MessageFrame):
        protocol.check_message(
            frame.message, max_length=MAX_MESSAGE_LENGTH, client_id=frame.client_id
        )
    return frame


def only_protocol_errors(text: str | None, data: bytes | None = None) -> None:
    """`validate` returns, or raises a ProtocolError with an SPEC code and a sentence."""
    try:
        validate(text, data)
    except ProtocolError as error:
        assert error.code in FRAME_CODES, error.code
        assert str(error.detail)
        assert error.client_id is None or isinstance(error.client_id, str)
        # The error frame itself must be sendable.
        protocol.encode(protocol.error_frame(error))


# Text as a client's frame may carry it: any code point, surrogates included.
any_char = st.one_of(st.characters(), st.characters(categories=["Cs"]))
any_text = st.text(any_char, max_size=200)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
FIELDS = ["type", "name", "message", "client_id", "resume", "offset"]
TYPES = ["message", "join", "typing", "ping"]
# Objects shaped like frames: the known fields, with any values.
frame_like = st.dictionaries(
    st.sampled_from(FIELDS) | st.text(max_size=8),
    st.sampled_from(TYPES) | json_values,
    max_size=5,
)


def as_json(value: Any) -> str:
    """JSON text of any drawn value; json, not orjson, writes integers of any size."""
    return json.dumps(value, ensure_ascii=False)


def nested(depth: int, *, kind: str) -> str:
    return "[" * depth + "]" * depth if kind == "list" else '{"a":' * depth + "1" + "}" * depth


@given(any_text)
@example("")
@example("\ud800")
@example('{"message": "\\ud800", "name": "x"}')
@example('{"message": "\ud83d", "name": "x"}')
@example("\ufeff{}")
@example("NaN")
@example('{"message": Infinity, "name": "x"}')
def test_any_text_is_a_frame_or_a_protocol_error(text):
    only_protocol_errors(text)


@given(st.binary(max_size=200))
def test_any_bytes_are_a_protocol_error_whether_binary_or_as_text(data):
    with pytest.raises(ProtocolError) as raised:
        protocol.decode(None, data)
    assert raised.value.code == protocol.INVALID_FRAME
    # Invalid UTF-8 as a lenient decoder would hand it on: as lone surrogates.
    only_protocol_errors(data.decode("utf-8", "surrogateescape"))
    only_protocol_errors(data.decode("latin-1"))


@given(st.integers(1, DEEPER_THAN_ANY_LIMIT), st.sampled_from(["list", "object"]))
def test_deep_nesting_is_a_protocol_error_or_a_frame(depth, kind):
    only_protocol_errors(nested(depth, kind=kind))
    only_protocol_errors(f'{{"type": "join", "name": {nested(depth, kind=kind)}}}')


@given(st.integers(1, 2000), st.sampled_from(["", "-", "0.", "1e", "1e-", "1.5E+"]))
def test_huge_numbers_are_a_protocol_error(digits, prefix):
    number = prefix + "9" * digits
    only_protocol_errors(number)
    only_protocol_errors(f'{{"type": "ping", "client_id": {number}}}')
    only_protocol_errors(f'{{"name": "Seiya", "message": {number}}}')


@given(
    st.lists(
        st.tuples(st.sampled_from(FIELDS), st.sampled_from(TYPES) | json_scalars),
        min_size=2,
        max_size=6,
    )
)
def test_duplicate_keys_are_a_protocol_error_or_a_frame(pairs):
    text = "{" + ",".join(f"{as_json(key)}:{as_json(value)}" for key, value in pairs) + "}"
    only_protocol_errors(text)


@given(frame_like)
def test_any_object_is_a_frame_or_a_protocol_error(content):
    only_protocol_errors(as_json(content))
    try:
        protocol.parse(content)
    except ProtocolError as error:
        assert error.code == protocol.INVALID_MESSAGE


# Valid frames, with what parse must make of them.
names = st.text(st.characters(exclude_categories=["Cc", "Cs"]), min_size=1, max_size=32)
texts = st.text(min_size=1, max_size=200)
client_ids = st.none() | st.text(max_size=protocol.MAX_CLIENT_ID_LENGTH)


@st.composite
def client_frames(draw) -> tuple[dict[str, Any], protocol.ClientFrame]:
    kind = draw(st.sampled_from(["tutorial", *TYPES]))
    client_id = draw(client_ids)
    extra = {} if client_id is None else {"client_id": client_id}
    if kind == "tutorial":
        name, message = draw(names), draw(texts)
        content = {"name": name, "message": message, **extra}
        return content, MessageFrame(message=message, name=name, client_id=client_id)
    if kind == "message":
        name, message = draw(st.none() | names), draw(texts)
        content = {"type": kind, "message": message, **extra}
        if name is not None:
            content["name"] = name
        return content, MessageFrame(message=message, name=name, client_id=client_id)
    if kind == "join":
        name = draw(names)
        content = {"type": kind, "name": name, **extra}
        # A rejoin: a token (checked later, by the consumer) and maybe the last offset seen.
        resume = draw(st.none() | st.text(max_size=protocol.MAX_RESUME_LENGTH))
        offset = None if resume is None else draw(st.none() | st.integers(0, 2**53))
        if resume is not None:
            content["resume"] = resume
        if offset is not None:
            content["offset"] = offset
        return content, JoinFrame(name=name, client_id=client_id, resume=resume, offset=offset)
    frame = TypingFrame(client_id=client_id) if kind == "typing" else PingFrame(client_id=client_id)
    return {"type": kind, **extra}, frame


@given(client_frames())
def test_every_valid_client_frame_round_trips(case):
    content, expected = case
    text = protocol.encode(content)
    assert protocol.decode(text, None) == content
    assert protocol.parse(protocol.decode(text, None)) == expected


ids = st.text(min_size=1, max_size=40)
timestamps = st.integers(0, 2**53)
counts = st.integers(0, 10_000)
server_frames = st.one_of(
    st.builds(protocol.message_frame, room=ids, name=names, message=texts, id=ids, ts=timestamps),
    st.builds(
        protocol.ack_frame, client_id=st.text(max_size=128), id=ids, ts=timestamps, offset=timestamps
    ),
    st.builds(protocol.presence_frame, event=st.sampled_from(["join", "leave"]), name=names,
              count=counts),
    st.builds(protocol.presence_diff_frame, joins=st.lists(names, max_size=5),
              leaves=st.lists(names, max_size=5), count=counts),
    st.builds(protocol.typing_frame, name=names),
    st.builds(protocol.pong_frame),
    st.builds(
        protocol.error_frame,
        st.builds(ProtocolError, st.sampled_from(sorted(FRAME_CODES)), texts, client_ids),
    ),
)  # fmt: skip


@given(server_frames)
def test_every_server_frame_round_trips(frame):
    assert protocol.decode(protocol.encode(frame), None) == frame


@given(
    ids,
    names,
    st.lists(names, max_size=8),
    st.integers(min_value=0, max_value=2**53),
    st.sampled_from([None, True, False]),
)
def test_a_joined_frame_round_trips_with_its_encoded_members(
    room, name, members, offset, recovered
):
    frame = protocol.joined_frame(
        room=room,
        name=name,
        members_json=orjson.dumps(members),
        epoch="e-1",
        offset=offset,
        resume="token",
        recovered=recovered,
    )
    expected = {
        "type": "joined",
        "room": room,
        "name": name,
        "members": members,
        "epoch": "e-1",
        "offset": offset,
        "resume": "token",
    }
    if recovered is not None:
        expected["recovered"] = recovered
    assert protocol.decode(protocol.encode(frame), None) == expected


@given(st.text(max_size=50), st.integers(min_value=1, max_value=2**53))
def test_a_numbered_message_is_the_frame_with_its_offset_last(text, offset):
    frame = protocol.message_frame(room="r", name="n", message=text, id="i", ts=1)
    numbered = protocol.decode(protocol.numbered_text(protocol.encode(frame), offset), None)
    assert numbered == {**frame, "offset": offset}


@st.composite
def one_field_broken(draw) -> str:
    """A valid frame's text with one field given a wrong value, or one character changed."""
    content, _ = draw(client_frames())
    how = draw(st.sampled_from(["value", "drop", "character"]))
    if how == "value":
        field = draw(st.sampled_from(sorted(content)))
        content = {**content, field: draw(json_values)}
    elif how == "drop":
        field = draw(st.sampled_from(sorted(content)))
        content = {key: value for key, value in content.items() if key != field}
    text = as_json(content)
    if how == "character":
        at = draw(st.integers(0, len(text) - 1))
        text = text[:at] + draw(any_char) + text[at + 1 :]
    return text


@given(one_field_broken())
def test_a_valid_frame_with_one_thing_broken_is_a_frame_or_a_protocol_error(text):
    only_protocol_errors(text)
