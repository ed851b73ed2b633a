"""Pure protocol parsing and validation: no event loop, no sockets."""

import pytest

from chat import protocol
from chat.names import skeleton_key
from chat.protocol import JoinFrame, MessageFrame, PingFrame, ProtocolError, TypingFrame


def code_of(call, *args, **kwargs) -> str:
    with pytest.raises(ProtocolError) as raised:
        call(*args, **kwargs)
    assert raised.value.detail
    return raised.value.code


def test_decode_accepts_an_object():
    assert protocol.decode('{"a": 1}', None) == {"a": 1}


@pytest.mark.parametrize(
    ("text", "data", "code"),
    [
        (None, b"\x00", "invalid_frame"),
        ("[]", None, "invalid_frame"),
        ("null", None, "invalid_frame"),
        ("{", None, "invalid_json"),
        ("", None, "invalid_json"),
        ("NaN garbage", None, "invalid_json"),
    ],
)
def test_decode_errors(text, data, code):
    assert code_of(protocol.decode, text, data) == code


def test_parse_tutorial_form_is_a_message():
    assert protocol.parse({"name": "Seiya", "message": "Olá"}) == MessageFrame(
        message="Olá", name="Seiya"
    )


def test_parse_every_type():
    assert protocol.parse({"type": "message", "message": "m", "client_id": "c"}) == MessageFrame(
        message="m", client_id="c"
    )
    assert protocol.parse({"type": "join", "name": "n"}) == JoinFrame(name="n")
    assert protocol.parse({"type": "typing"}) == TypingFrame()
    assert protocol.parse({"type": "ping"}) == PingFrame()


def test_parse_ignores_unknown_fields():
    assert protocol.parse({"type": "ping", "extra": [1]}) == PingFrame()


@pytest.mark.parametrize(
    "content",
    [
        {"type": "message"},
        {"type": "message", "message": None},
        {"message": ["x"]},
        {"message": "x", "name": 1},
        {"type": "join", "name": 5},
        {"type": "nope"},
        {"type": None},
        {"type": "ping", "client_id": 3},
        {"type": "ping", "client_id": "x" * 129},
    ],
)
def test_parse_type_errors(content):
    assert code_of(protocol.parse, content) == "invalid_message"


def test_parse_error_echoes_valid_client_id_only():
    with pytest.raises(ProtocolError) as raised:
        protocol.parse({"type": "message", "client_id": "abc"})
    assert raised.value.client_id == "abc"
    with pytest.raises(ProtocolError) as raised:
        protocol.parse({"type": "message", "client_id": 12})
    assert raised.value.client_id is None


def test_clean_name_trims_and_counts_code_points():
    assert protocol.clean_name("  Seiya\n", max_length=5) == "Seiya"
    assert protocol.clean_name("é" * 5, max_length=5) == "é" * 5
    assert protocol.clean_name("a\u200db", max_length=3) == "a\u200db"


@pytest.mark.parametrize("name", ["", " \t ", "abcdef", "a\x00b", "a\nb", "a\x7fb", "a\x85b"])
def test_clean_name_refuses(name):
    assert code_of(protocol.clean_name, name, max_length=5) == "name_invalid"


@pytest.mark.parametrize("code", [*range(0x202A, 0x202F), *range(0x2066, 0x206A)])
def test_clean_name_refuses_bidi_embeddings_overrides_and_isolates(code):
    with pytest.raises(ProtocolError) as raised:
        protocol.clean_name(f"Seiya{chr(code)}", max_length=32, client_id="j")
    assert raised.value.code == "name_invalid"
    assert raised.value.detail == (
        "Names cannot contain characters that reorder text, such as the right-to-left"
        " override: they make a name show in another order than it is written."
    )
    assert raised.value.client_id == "j"


@pytest.mark.parametrize("char", ["\u200d", "\u200b", "\u200e", "\u200f", "\u2060"])
def test_clean_name_allows_other_format_characters(char):
    assert protocol.clean_name(f" a{char}b ", max_length=32) == f"a{char}b"


@pytest.mark.parametrize("name", ["\u200b", "\u200b\u200d", " \u2060 "])
def test_clean_name_refuses_a_name_that_shows_as_nothing(name):
    """Only invisible characters: the page would show an empty name."""
    assert code_of(protocol.clean_name, name, max_length=32) == "name_invalid"


def test_clean_name_measures_a_long_name_before_reading_it_whole(monkeypatch):
    """A frame-sized name is refused on its length alone: its skeleton (NFKC
    makes U+FDFA eighteen characters) would cost a tenth of a second each."""
    seen: list[int] = []

    def measured_skeleton_key(name: str) -> str:
        seen.append(len(name))
        return skeleton_key(name)

    monkeypatch.setattr(protocol, "skeleton_key", measured_skeleton_key)
    with pytest.raises(ProtocolError) as raised:
        protocol.clean_name("\ufdfa" * 20_000, max_length=32)
    assert raised.value.code == "name_invalid"
    assert str(raised.value.detail) == "Names can be at most 32 characters long."
    assert protocol.clean_name("Seiya", max_length=32) == "Seiya"
    assert seen == [5]


def test_check_message():
    protocol.check_message("x" * 10, max_length=10)
    assert code_of(protocol.check_message, "", max_length=10) == "message_empty"
    assert code_of(protocol.check_message, "\n \u3000", max_length=10) == "message_empty"
    assert code_of(protocol.check_message, "x" * 11, max_length=10) == "message_too_long"


def test_error_frame_carries_client_id_only_when_given():
    assert protocol.error_frame(ProtocolError("rate_limited", "Slow down.")) == {
        "type": "error",
        "code": "rate_limited",
        "detail": "Slow down.",
    }
    assert protocol.error_frame(ProtocolError("x", "y.", "c"))["client_id"] == "c"


def test_encode_is_compact_utf8_json():
    assert protocol.encode({"a": "é", "b": [1]}) == '{"a":"é","b":[1]}'
