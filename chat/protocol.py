"""The wire protocol: parse and validate client frames, build server frames.

Pure functions and dataclasses, no I/O, so every rule is testable without a
socket. Validation follows SPEC's order: type errors first, then name errors,
then message errors.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

import orjson
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from .i18n import Text, sentence
from .names import has_bidi_control, skeleton_key

# Longest client_id echoed back; it is the client's own correlation token.
MAX_CLIENT_ID_LENGTH = 128
# SPEC: a resume token is at most 512 characters; a longer `resume` is invalid_message.
MAX_RESUME_LENGTH = 512

# Close codes. Applications may only send 1000 and 3000-4999, so our own
# policy closes are 4xxx; 1009 for an oversized frame and 1012 for a restart
# come from the server.
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_SERVICE_RESTART = 1012
CLOSE_TOO_BIG = 4009  # only if a server was started without its size limit
CLOSE_TOO_MANY_ERRORS = 4008
CLOSE_FELL_BEHIND = 4029  # the connection read too slowly and missed room events
CLOSE_ROOM_CLOSED = 4403
CLOSE_NO_SUCH_ROOM = 4404
CLOSE_KICKED = 4401  # a moderator removed the member
CLOSE_REPLACED = 4409  # the member's newer connection took its name over
CLOSE_BANNED = 4451  # the close reason carries the ban's reason
# Redis (shared rooms and names) is unreachable; the page reconnects later.
CLOSE_UNAVAILABLE = 4503

# Error codes (SPEC "Bad input").
INVALID_JSON = "invalid_json"
INVALID_FRAME = "invalid_frame"
INVALID_MESSAGE = "invalid_message"
NAME_INVALID = "name_invalid"
NAME_TAKEN = "name_taken"
ROOM_FULL = "room_full"
NAME_MISMATCH = "name_mismatch"
ALREADY_JOINED = "already_joined"
MESSAGE_EMPTY = "message_empty"
MESSAGE_TOO_LONG = "message_too_long"
RATE_LIMITED = "rate_limited"
NOT_JOINED = "not_joined"


class ProtocolError(Exception):
    """A client frame broke the protocol; answered with an `error` frame."""

    def __init__(self, code: str, detail: Text, client_id: str | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.client_id = client_id


@dataclass(frozen=True, slots=True)
class MessageFrame:
    message: str
    name: str | None = None
    client_id: str | None = None


@dataclass(frozen=True, slots=True)
class JoinFrame:
    name: str
    client_id: str | None = None
    # A rejoin (SPEC "Nothing lost across a short disconnect"): the token of
    # the member's last `joined`, and the last offset it received.
    resume: str | None = None
    offset: int | None = None


@dataclass(frozen=True, slots=True)
class TypingFrame:
    client_id: str | None = None


@dataclass(frozen=True, slots=True)
class PingFrame:
    client_id: str | None = None


ClientFrame = MessageFrame | JoinFrame | TypingFrame | PingFrame


def decode(text: str | None, data: bytes | None) -> dict[str, Any]:
    """Turn one WebSocket payload into a JSON object, or raise ProtocolError."""
    if text is None:
        raise ProtocolError(INVALID_FRAME, _("Binary frames are not supported; send JSON text."))
    try:
        content = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ProtocolError(INVALID_JSON, _("That frame is not valid JSON.")) from None
    if not isinstance(content, dict):
        raise ProtocolError(INVALID_FRAME, _("A frame must be a JSON object."))
    return content


def parse(content: dict[str, Any]) -> ClientFrame:
    """Check a frame's type and field types; names and texts are checked later."""
    raw_client_id = content.get("client_id")
    client_id = raw_client_id if _valid_client_id(raw_client_id) else None
    if raw_client_id is not None and client_id is None:
        raise ProtocolError(
            INVALID_MESSAGE,
            sentence(
                _("client_id must be a string of at most %(max)s characters."),
                max=MAX_CLIENT_ID_LENGTH,
            ),
        )
    frame_type = content.get("type", "message")
    if frame_type == "message":
        message = content.get("message")
        name = content.get("name")
        if not isinstance(message, str):
            raise ProtocolError(
                INVALID_MESSAGE, _('A message needs a text field "message".'), client_id
            )
        if name is not None and not isinstance(name, str):
            raise ProtocolError(INVALID_MESSAGE, _('The field "name" must be text.'), client_id)
        return MessageFrame(message=message, name=name, client_id=client_id)
    if frame_type == "join":
        name = content.get("name")
        if not isinstance(name, str):
            raise ProtocolError(INVALID_MESSAGE, _('A join needs a text field "name".'), client_id)
        resume, offset = _resume_fields(content, client_id)
        return JoinFrame(name=name, client_id=client_id, resume=resume, offset=offset)
    if frame_type == "typing":
        return TypingFrame(client_id=client_id)
    if frame_type == "ping":
        return PingFrame(client_id=client_id)
    if not isinstance(frame_type, str):
        raise ProtocolError(INVALID_MESSAGE, _('The field "type" must be text.'), client_id)
    raise ProtocolError(
        INVALID_MESSAGE,
        sentence(
            _("Unknown frame type %(type)s; use message, join, typing or ping."),
            type=repr(frame_type[:40]),
        ),
        client_id,
    )


def _resume_fields(content: dict[str, Any], client_id: str | None) -> tuple[str | None, int | None]:
    """A join's `resume` and `offset`, checked for type only (the token is verified later)."""
    resume = content.get("resume")
    offset = content.get("offset")
    if resume is not None and not (isinstance(resume, str) and len(resume) <= MAX_RESUME_LENGTH):
        raise ProtocolError(
            INVALID_MESSAGE,
            sentence(
                _('"resume" must be the text of a resume token, at most %(max)s characters.'),
                max=MAX_RESUME_LENGTH,
            ),
            client_id,
        )
    # bool is an int in Python, not in JSON: true is no offset.
    if offset is not None and (
        not isinstance(offset, int) or isinstance(offset, bool) or offset < 0
    ):
        raise ProtocolError(
            INVALID_MESSAGE, _('"offset" must be a whole number, 0 or more.'), client_id
        )
    if offset is not None and resume is None:
        raise ProtocolError(
            INVALID_MESSAGE, _('"offset" goes with "resume": send both, or neither.'), client_id
        )
    return resume, offset


def _valid_client_id(value: object) -> bool:
    return isinstance(value, str) and len(value) <= MAX_CLIENT_ID_LENGTH


def clean_name(raw: str, *, max_length: int, client_id: str | None = None) -> str:
    """Trim a name and check it; the trimmed name is the one joined and relayed."""
    name = raw.strip()
    if not name:
        raise ProtocolError(NAME_INVALID, _("Please choose a name."), client_id)
    # The length before anything that reads the whole name: NFKC can make a
    # character eighteen (U+FDFA), so the skeleton of a frame-sized name
    # would hold the event loop for a tenth of a second, once per bad frame.
    if len(name) > max_length:
        raise ProtocolError(
            NAME_INVALID,
            sentence(_("Names can be at most %(max)s characters long."), max=max_length),
            client_id,
        )
    # A name of nothing but invisible characters (U+200B...) shows as no
    # name at all: its skeleton, which drops them, is empty.
    if not skeleton_key(name):
        raise ProtocolError(NAME_INVALID, _("Please choose a name."), client_id)
    if any(unicodedata.category(char) == "Cc" for char in name):
        raise ProtocolError(NAME_INVALID, _("Names cannot contain control characters."), client_id)
    if has_bidi_control(name):
        raise ProtocolError(
            NAME_INVALID,
            _(
                "Names cannot contain characters that reorder text, such as the right-to-left"
                " override: they make a name show in another order than it is written."
            ),
            client_id,
        )
    return name


def check_message(text: str, *, max_length: int, client_id: str | None = None) -> None:
    """Refuse an empty or over-long chat message."""
    if not text.strip():
        raise ProtocolError(MESSAGE_EMPTY, _("Cannot send an empty message."), client_id)
    if len(text) > max_length:
        raise ProtocolError(
            MESSAGE_TOO_LONG,
            sentence(
                _("Messages can be at most %(max)s characters long; this one has %(length)s."),
                max=max_length,
                length=len(text),
            ),
            client_id,
        )


def room_full(*, client_id: str | None = None) -> ProtocolError:
    """A join beyond the room's size (`Room.max_members`); a name error, for precedence."""
    return ProtocolError(ROOM_FULL, _("This room is full; please try again later."), client_id)


def slow_mode(*, wait_seconds: int, client_id: str | None = None) -> ProtocolError:
    """A message sooner than the room's slow mode allows, saying how long to wait."""
    return ProtocolError(
        RATE_LIMITED,
        sentence(
            ngettext_lazy(
                "This room is in slow mode: wait %(seconds)s second before your next message.",
                "This room is in slow mode: wait %(seconds)s seconds before your next message.",
                wait_seconds,
            ),
            seconds=wait_seconds,
        ),
        client_id,
    )


# Server frames.


def message_frame(*, room: str, name: str, message: str, id: str, ts: int) -> dict[str, Any]:
    """A chat message without its offset: the channel layer numbers it (`numbered_text`)."""
    return {"type": "message", "room": room, "name": name, "message": message, "id": id, "ts": ts}


def numbered_text(text: str, offset: int) -> str:
    """A message frame's JSON text with `"offset"` added as its last field.

    The frame is encoded once, before the layer knows its offset; the offset
    goes in where the text ends, the same way the Redis layer's script does
    it (chat/layers/lua/publish.lua).
    """
    return f'{text[:-1]},"offset":{offset}}}'


def ack_frame(*, client_id: str, id: str, ts: int, offset: int) -> dict[str, Any]:
    return {"type": "ack", "client_id": client_id, "id": id, "ts": ts, "offset": offset}


def joined_frame(
    *,
    room: str,
    name: str,
    members_json: str | bytes,
    epoch: str,
    offset: int,
    resume: str,
    recovered: bool | None = None,
) -> dict[str, Any]:
    """`members_json`: the names, a JSON array already encoded (chat.presence.base.Claim).

    `recovered` only in the answer to a join that carried `resume`.
    """
    frame = {
        "type": "joined",
        "room": room,
        "name": name,
        "members": orjson.Fragment(members_json),
        "epoch": epoch,
        "offset": offset,
        "resume": resume,
    }
    if recovered is not None:
        frame["recovered"] = recovered
    return frame


def presence_frame(*, event: str, name: str, count: int) -> dict[str, Any]:
    return {"type": "presence", "event": event, "name": name, "count": count}


def presence_diff_frame(*, joins: list[str], leaves: list[str], count: int) -> dict[str, Any]:
    return {"type": "presence", "event": "diff", "joins": joins, "leaves": leaves, "count": count}


def typing_frame(*, name: str) -> dict[str, Any]:
    return {"type": "typing", "name": name}


def pong_frame() -> dict[str, Any]:
    return {"type": "pong"}


def error_frame(error: ProtocolError) -> dict[str, Any]:
    """The error frame; its detail in the active language (the consumer chooses it)."""
    frame: dict[str, Any] = {"type": "error", "code": error.code, "detail": str(error.detail)}
    if error.client_id is not None:
        frame["client_id"] = error.client_id
    return frame


def encode(frame: dict[str, Any]) -> str:
    """One frame as compact JSON text; non-ASCII stays as is (the frame is UTF-8).

    orjson: several times faster than json for the frames relayed to every
    member, and it refuses lone surrogates (json would accept them from a
    client and produce text that cannot be sent as UTF-8).
    """
    return orjson.dumps(frame).decode()
