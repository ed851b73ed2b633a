"""What the fuzzer sends (chat.testing.fuzz): generated and mutated frames, each with its verdict.

A `Case` is what one turn of a fuzzing connection writes at once (one frame,
or a few: a message in fragments, a close and what follows it) and what must
come of it: the error code a broken field earns, the close code of an
oversized or malformed frame, or, for a valid frame, its ack and its relay
to the room. Cases whose effect cannot be told in advance (a frame with a
character changed, random text) are `maybe`: any SPEC answer is right, and
success only for a frame that `chat.protocol` itself accepts.

Pure and seeded: the same seed makes the same cases.
"""

from __future__ import annotations

import enum
import json
import random
from dataclasses import dataclass
from typing import Any

from chat import protocol

from . import wsframes

# SPEC "Bad input": every code an error frame may carry.
ERROR_CODES = frozenset(
    {
        protocol.INVALID_JSON,
        protocol.INVALID_FRAME,
        protocol.INVALID_MESSAGE,
        protocol.NAME_INVALID,
        protocol.NAME_TAKEN,
        protocol.ROOM_FULL,
        protocol.NAME_MISMATCH,
        protocol.ALREADY_JOINED,
        protocol.MESSAGE_EMPTY,
        protocol.MESSAGE_TOO_LONG,
        protocol.RATE_LIMITED,
        protocol.NOT_JOINED,
    }
)
# Close codes. SPEC's own: a frame over 64 KiB, too many bad frames. The
# WebSocket's (RFC 6455 section 7.4.1), sent by the server's protocol layer
# before the chat sees anything: a broken frame, a text frame that is not
# UTF-8. And the answer to the client's own close.
TOO_BIG = protocol.CLOSE_MESSAGE_TOO_BIG
TOO_MANY_ERRORS = protocol.CLOSE_TOO_MANY_ERRORS
PROTOCOL_ERROR = 1002
INVALID_PAYLOAD = 1007
NORMAL = 1000

# SPEC's limits, as a fresh install has them.
MAX_FRAME_BYTES = 64 * 1024
MAX_NAME_LENGTH = 32
MAX_MESSAGE_LENGTH = 2000
MAX_RESUME_LENGTH = protocol.MAX_RESUME_LENGTH
ERROR_LIMIT = 50

# Beyond orjson's 1024 levels, and within the 64 KiB frame.
DEEP = 2000


class Kind(enum.StrEnum):
    """A row of the report: what a case does."""

    JOIN = "valid join"
    REJOIN = "valid rejoin with resume"
    MESSAGE = "valid message"
    PING = "valid ping"
    TYPING = "valid typing"
    FRAGMENTED = "valid message in fragments"
    BROKEN_FIELD = "valid frame, one field broken"
    JSON_EDGE = "deep nesting, huge number, duplicate key"
    MUTATED = "valid frame, characters changed"
    RANDOM_TEXT = "random text"
    RANDOM_BYTES_TEXT = "random bytes as a text frame"
    RANDOM_BINARY = "random bytes as a binary frame"
    SURROGATE = "lone surrogate in a text frame"
    OVERSIZED = "oversized (> 64 KiB)"
    BAD_FRAGMENTS = "broken fragmentation"
    BAD_WIRE = "broken frame header"
    AFTER_CLOSE = "frames after the client's close"
    ERROR_STORM = "more than 50 bad frames"


@dataclass(frozen=True, slots=True)
class Case:
    """Bytes to write at once, and what must come of them."""

    kind: Kind
    data: bytes
    # WebSocket messages in `data` that the report counts (a message in
    # fragments is one; so is a close frame).
    frames: int = 1
    # Bad: the error codes one of which each bad frame must earn (or a close).
    codes: frozenset[str] = frozenset()
    # How many error frames come before the close, for a storm.
    errors: int = 1
    # The close codes that may answer it; a case with none must leave the connection open.
    closes: frozenset[int] = frozenset()
    # Valid: what the server confirms.
    joins: bool = False
    message: str | None = None
    client_id: str | None = None
    # The case's text frame, as the server reads it once reassembled, for
    # `maybe` cases and to count the pongs a valid ping earns.
    payload: str | None = None
    maybe: bool = False
    # Message texts written after something that closes the connection: never relayed.
    forbidden: tuple[str, ...] = ()
    # Needs a connection of its own (it uses up the error limit).
    fresh: bool = False
    # A rejoin with a resume token: the offset after which a recovered
    # rejoin replays every message, max(the offset sent, the token's first join).
    replay_after: int | None = None

    @property
    def bad(self) -> bool:
        return bool(self.codes or self.closes) and not self.maybe and not self.joins

    @property
    def pings(self) -> int:
        """Pongs it earns: one if its text is a valid ping."""
        if self.payload is None or (self.closes and not self.maybe):
            return 0
        return int(isinstance(accepted(self.payload), protocol.PingFrame))


def accepted(payload: str) -> protocol.ClientFrame | None:
    """The frame `chat.protocol` makes of a text, or None if it refuses it."""
    try:
        return protocol.parse(protocol.decode(payload, None))
    except protocol.ProtocolError:
        return None


def encode(content: Any) -> str:
    """JSON text of any value, integers beyond 64 bits too (which orjson refuses to write)."""
    return json.dumps(content, ensure_ascii=False)


# Text drawn from these, mixed: letters of several scripts, marks, emoji and
# their joiners, controls, white space, JSON's own punctuation.
ALPHABETS = [
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    "áéíóúãõçÁÉÍÓÚÃÕÇñÑüÜßøÆ",
    "日本語中文한국어",
    "مرحباשלום",
    "🙂👍🏽🇧🇷\u200d\ufe0f",
    "\u0300\u0301\u0323\u20dd",
    "\x00\x01\x1f\x7f\x85",
    " \t\n\r\u00a0\u2028\u3000",
    '"\\{}[]:,',
    "\u202e\u2066\u200b\u200e\ufeff",
]


def any_char(rng: random.Random) -> str:
    """Any Unicode scalar value (no surrogate: those cannot be sent as UTF-8)."""
    while True:
        point = rng.randrange(0x110000)
        if not 0xD800 <= point <= 0xDFFF:
            return chr(point)


def random_text(rng: random.Random, length: int) -> str:
    pools = rng.sample(ALPHABETS, rng.randint(1, 3))
    return "".join(
        any_char(rng) if rng.random() < 0.1 else rng.choice(rng.choice(pools))
        for _ in range(length)
    )


@dataclass(slots=True)
class Generator:
    """Cases for one fuzzing connection after another, from one seed."""

    rng: random.Random
    prefix: str
    # Names that are taken in the room for as long as the run lasts (the observers').
    taken: tuple[str, ...]
    serial: int = 0
    names: int = 0
    # What the writer knows from its connections, for a rejoin: the latest
    # resume token and the name it was issued with, the offset of the token's
    # first join, and the latest offset a connection of the writer was given.
    resume: str | None = None
    resume_name: str | None = None
    first: int = 0
    seen: int = 0

    # Identities.

    def token(self) -> str:
        """A message text no other case uses, with some random text after it."""
        self.serial += 1
        tail = random_text(self.rng, self.rng.randint(0, 40))
        return f"{self.prefix}-{self.serial} {tail}"

    def new_name(self) -> str:
        self.names += 1
        name = f"{self.prefix}n{self.names}"
        decorations = ["", " Olá", " 🙂", " 日本", "-ß"]
        return (name + self.rng.choice(decorations))[:MAX_NAME_LENGTH]

    def new_client_id(self) -> str:
        self.serial += 1
        return f"c{self.serial}"

    def chat_message(self, text: str, joined: str | None) -> str:
        """A valid chat message for a connection joined as `joined`, or joining with it."""
        content: dict[str, Any] = {"type": "message", "message": text}
        if joined is None:
            content["name"] = self.new_name()
        return encode(content)

    # Turns.

    def join(self) -> Case:
        content = {"type": "join", "name": self.new_name()}
        if self.rng.random() < 0.1:
            # A token that does not verify: a plain join, `recovered: false`.
            content["resume"] = random_text(
                self.rng, self.rng.randint(0, protocol.MAX_RESUME_LENGTH)
            )
        text = encode(content)
        return Case(Kind.JOIN, wsframes.text(text), joins=True, payload=text)

    def rejoin(self) -> Case:
        """Back with the last connection's token and the last offset it was given."""
        assert self.resume is not None and self.resume_name is not None
        content = {"type": "join", "name": self.resume_name, "resume": self.resume}
        if self.rng.random() < 0.8:
            content["offset"] = self.seen
        text = encode(content)
        after = max(content.get("offset", 0), self.first)
        return Case(Kind.REJOIN, wsframes.text(text), joins=True, payload=text, replay_after=after)

    def joined(self, frame: dict[str, Any]) -> None:
        """Keep what a `joined` frame gives for the next rejoin."""
        self.resume, self.resume_name = frame["resume"], frame["name"]
        self.seen = max(self.seen, frame["offset"])
        if frame.get("recovered") is not True:
            self.first = frame["offset"]

    def next(self, joined: str | None) -> Case:
        """The next case for a connection joined as `joined` (None: not joined)."""
        weights = WEIGHTS
        if joined is None:
            # Stay unjoined a while: the name errors happen only here.
            weights = {
                kind: weight * UNJOINED_WEIGHTS.get(kind, 1) for kind, weight in weights.items()
            }
        kind = self.rng.choices(list(weights), list(weights.values()))[0]
        return self.make(kind, joined)

    def make(self, kind: Kind, joined: str | None) -> Case:
        return getattr(self, "_" + kind.name.lower())(joined)

    def _join(self, joined: str | None) -> Case:
        return self.join()

    def _message(self, joined: str | None) -> Case:
        text, client_id = self.token(), self.new_client_id()
        rng = self.rng
        if joined is None:
            name = self.new_name()
            content: dict[str, Any] = {"name": name, "message": text}
            if rng.random() < 0.7:
                content["client_id"] = client_id
            else:
                client_id = None
            payload = encode(content)
            return Case(
                Kind.MESSAGE,
                wsframes.text(payload),
                joins=True,
                message=text,
                client_id=client_id,
                payload=payload,
            )
        shapes: list[dict[str, Any]] = [
            {"type": "message", "message": text, "client_id": client_id},
            {"message": text, "client_id": client_id},
            {"name": joined, "message": text, "client_id": client_id},
            # The name may carry white space around it: it is trimmed first.
            {"name": f"  {joined}\n", "message": text, "client_id": client_id},
            {"message": text, "client_id": client_id, "extra": [1, {"x": None}]},
            {"message": text},
        ]
        content = rng.choice(shapes)
        payload = encode(content)
        return Case(
            Kind.MESSAGE,
            wsframes.text(payload),
            message=text,
            client_id=content.get("client_id"),
            payload=payload,
        )

    def _ping(self, joined: str | None) -> Case:
        payload = encode(self.rng.choice([{"type": "ping"}, {"type": "ping", "client_id": "p"}]))
        return Case(Kind.PING, wsframes.text(payload), payload=payload)

    def _typing(self, joined: str | None) -> Case:
        payload = encode({"type": "typing"})
        if joined is None:
            return Case(
                Kind.BROKEN_FIELD,
                wsframes.text(payload),
                payload=payload,
                codes=frozenset({protocol.NOT_JOINED}),
            )
        return Case(Kind.TYPING, wsframes.text(payload), payload=payload)

    def _fragmented(self, joined: str | None) -> Case:
        case = self._message(joined)
        assert case.payload is not None
        data = case.payload.encode()
        cuts = [self.rng.randrange(1, len(data)) for _ in range(self.rng.randint(1, 5))]
        pieces = wsframes.fragments(data, cuts)
        if len(pieces) > 1 and self.rng.random() < 0.5:
            # A control frame may come between the pieces of a message.
            pieces.insert(self.rng.randrange(1, len(pieces)), wsframes.ping(b"between"))
        return Case(
            Kind.FRAGMENTED,
            b"".join(pieces),
            joins=case.joins,
            message=case.message,
            client_id=case.client_id,
            payload=case.payload,
        )

    def _broken_field(self, joined: str | None) -> Case:
        content, codes = self.broken(joined)
        payload = encode(content)
        client_id = content.get("client_id")
        valid_id = client_id if isinstance(client_id, str) and len(client_id) <= 128 else None
        return Case(
            Kind.BROKEN_FIELD,
            wsframes.text(payload),
            codes=frozenset(codes),
            client_id=valid_id,
            payload=payload,
        )

    def broken(self, joined: str | None) -> tuple[dict[str, Any], set[str]]:
        """A valid frame with one field given a wrong value, and the codes that answers."""
        rng = self.rng
        client_id = self.new_client_id()
        wrong_types: list[Any] = [None, 7, -1.5, True, [], ["x"], {"a": 1}, 10**30]
        bad_names = [
            ("", protocol.NAME_INVALID),
            ("  \t ", protocol.NAME_INVALID),
            ("x" * (MAX_NAME_LENGTH + rng.randint(1, 500)), protocol.NAME_INVALID),
            (f"bad\x00{rng.randint(0, 99)}", protocol.NAME_INVALID),
            (f"bad\x1b[31m{rng.randint(0, 99)}", protocol.NAME_INVALID),
            (f"\u202e{rng.randint(0, 99)}nimda", protocol.NAME_INVALID),
            (f"x\u2067{rng.randint(0, 99)}", protocol.NAME_INVALID),
            ("\u200b\u200d", protocol.NAME_INVALID),
            ("\ufdfa" * 20_000, protocol.NAME_INVALID),
        ]
        for taken in self.taken:
            bad_names.append((taken, protocol.NAME_TAKEN))
            bad_names.append((taken.upper(), protocol.NAME_TAKEN))
            # A look-alike: a Cyrillic o (U+043E) for the Latin one.
            bad_names.append((taken.replace("o", "\u043e"), protocol.NAME_TAKEN))
        bad_messages = [
            ("", protocol.MESSAGE_EMPTY),
            (" \n\t\u3000 ", protocol.MESSAGE_EMPTY),
            ("m" * (MAX_MESSAGE_LENGTH + rng.randint(1, 8000)), protocol.MESSAGE_TOO_LONG),
        ]
        invalid = {protocol.INVALID_MESSAGE}
        choices = [
            "message type",
            "message missing",
            "name type",
            "type",
            "client_id",
            "bad message",
            "join name type",
            "join name missing",
        ]
        if joined is None:
            choices += ["bad name", "bad name", "message before join", "rejoin fields"]
        else:
            choices += ["name mismatch", "join again", "rejoin fields"]
        how = rng.choice(choices)
        base: dict[str, Any] = {"type": "message", "message": self.token(), "client_id": client_id}
        if joined is None:
            base["name"] = self.new_name()
        if how == "message type":
            return {**base, "message": rng.choice(wrong_types)}, invalid
        if how == "message missing":
            return {key: value for key, value in base.items() if key != "message"}, invalid
        if how == "name type":
            return {**base, "name": rng.choice([7, [], {"n": 1}, True])}, invalid
        if how == "type":
            value = rng.choice(["nope", "MESSAGE", "join ", "", 3, None, ["ping"], "x" * 500])
            return {**base, "type": value}, invalid
        if how == "client_id":
            value = rng.choice([7, [], {"c": 1}, True, "c" * (protocol.MAX_CLIENT_ID_LENGTH + 1)])
            return {**base, "client_id": value}, invalid
        if how == "bad message":
            message, code = rng.choice(bad_messages)
            return {**base, "message": message}, {code}
        if how == "join name type":
            return {"type": "join", "name": rng.choice(wrong_types), "client_id": client_id}, (
                invalid
            )
        if how == "join name missing":
            return {"type": "join", "client_id": client_id}, invalid
        if how == "bad name":
            name, code = rng.choice(bad_names)
            if rng.random() < 0.5:
                return {"type": "join", "name": name, "client_id": client_id}, {code}
            return {**base, "name": name}, {code}
        if how == "message before join":
            content = {key: value for key, value in base.items() if key != "name"}
            return rng.choice([content, {"type": "typing", "client_id": client_id}]), {
                protocol.NOT_JOINED
            }
        if how == "rejoin fields":
            # Checked for type before anything else of a join: invalid_message, joined or not.
            join: dict[str, Any] = {"type": "join", "name": self.new_name(), "client_id": client_id}
            broken_fields = rng.choice(
                [
                    {"offset": rng.randint(0, 99)},
                    {"resume": "r", "offset": rng.choice([-1, 1.5, True, "3", [3], 10**30])},
                    {"resume": rng.choice([5, True, ["t"], {"t": 1}])},
                    {"resume": "r" * (protocol.MAX_RESUME_LENGTH + rng.randint(1, 100))},
                ]
            )
            return {**join, **broken_fields}, invalid
        if how == "name mismatch":
            return {**base, "name": joined + "x"}, {protocol.NAME_MISMATCH}
        assert how == "join again"
        name = rng.choice([joined, self.new_name()])
        return {"type": "join", "name": name, "client_id": client_id}, {protocol.ALREADY_JOINED}

    def _json_edge(self, joined: str | None) -> Case:
        rng = self.rng
        depth = rng.randint(DEEP // 2, DEEP)
        invalid = {protocol.INVALID_JSON, protocol.INVALID_MESSAGE, protocol.INVALID_FRAME}
        how = rng.choice(["deep", "deep field", "huge number", "huge exponent", "duplicate"])
        if how == "deep":
            payload = rng.choice(["[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth])
        elif how == "deep field":
            payload = f'{{"type":"join","name":{"[" * depth}{"]" * depth}}}'
        elif how == "huge number":
            number = "9" * rng.randint(20, 5000)
            payload = f'{{"type":"message","message":{number},"client_id":"h"}}'
        elif how == "huge exponent":
            payload = f'{{"type":"ping","client_id":1e{rng.randint(309, 99999)}}}'
        else:
            # Keys given twice: the last one counts, so some of these are valid.
            return self._duplicate_keys(joined)
        return Case(
            Kind.JSON_EDGE, wsframes.text(payload), codes=frozenset(invalid), payload=payload
        )

    def _duplicate_keys(self, joined: str | None) -> Case:
        rng = self.rng
        text = self.token()
        pairs = [("type", "message"), ("message", text)]
        if joined is None:
            pairs.append(("name", self.new_name()))
        doubled = rng.choice(
            [("type", rng.choice(["ping", "nope", 5])), ("message", rng.choice([text, 5, ""]))]
        )
        pairs.insert(rng.randint(0, len(pairs)), doubled)
        payload = "{" + ",".join(f"{encode(key)}:{encode(value)}" for key, value in pairs) + "}"
        return self.maybe(Kind.JSON_EDGE, payload)

    def maybe(self, kind: Kind, payload: str, *, data: bytes | None = None) -> Case:
        """A text whose answer is not known in advance; success only if chat.protocol takes it."""
        frame = accepted(payload)
        message = frame.message if isinstance(frame, protocol.MessageFrame) else None
        client_id = frame.client_id if frame is not None else None
        return Case(
            kind,
            wsframes.text(payload) if data is None else data,
            payload=payload,
            maybe=True,
            message=message,
            client_id=client_id,
            joins=isinstance(frame, protocol.JoinFrame | protocol.MessageFrame),
        )

    def _mutated(self, joined: str | None) -> Case:
        rng = self.rng
        source = rng.choice([self._message, self._broken_field, self._ping, self._join])
        payload = source(joined).payload
        assert payload is not None
        chars = list(payload)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(chars) + 1)
            edit = rng.choice(["insert", "delete", "replace", "truncate", "repeat"])
            if edit == "insert":
                chars.insert(at, rng.choice(['"', "{", "}", ",", ":", "\\", any_char(rng)]))
            elif edit == "delete" and at < len(chars):
                del chars[at]
            elif edit == "replace" and at < len(chars):
                chars[at] = any_char(rng) if rng.random() < 0.5 else rng.choice('"{}[],:\\0aZ ')
            elif edit == "truncate":
                del chars[at:]
            elif edit == "repeat":
                chars[at:at] = chars[max(0, at - 8) : at]
        return self.maybe(Kind.MUTATED, "".join(chars))

    def _random_text(self, joined: str | None) -> Case:
        return self.maybe(Kind.RANDOM_TEXT, random_text(self.rng, self.rng.randint(0, 300)))

    def _random_bytes_text(self, joined: str | None) -> Case:
        data = self.rng.randbytes(self.rng.randint(1, 300))
        try:
            payload = data.decode()
        except UnicodeDecodeError:
            return Case(
                Kind.RANDOM_BYTES_TEXT, wsframes.text(data), closes=frozenset({INVALID_PAYLOAD})
            )
        return self.maybe(Kind.RANDOM_BYTES_TEXT, payload)

    def _random_binary(self, joined: str | None) -> Case:
        data = self.rng.randbytes(self.rng.randint(0, 300))
        if self.rng.random() < 0.3:
            # JSON that would be valid as text is still refused as binary.
            data = encode({"type": "message", "message": self.token()}).encode()
        return Case(
            Kind.RANDOM_BINARY, wsframes.binary(data), codes=frozenset({protocol.INVALID_FRAME})
        )

    def _surrogate(self, joined: str | None) -> Case:
        # What a lenient encoder makes of a lone surrogate ("WTF-8"): not UTF-8.
        point = chr(self.rng.randrange(0xD800, 0xE000))
        text = encode({"type": "message", "message": f"{self.token()} {point}"})
        data = text.encode("utf-8", "surrogatepass")
        return Case(Kind.SURROGATE, wsframes.text(data), closes=frozenset({INVALID_PAYLOAD}))

    def _oversized(self, joined: str | None) -> Case:
        """Over 64 KiB, as one frame or in pieces; a valid message right behind it is lost."""
        rng = self.rng
        size = MAX_FRAME_BYTES + rng.randint(1, 64 * 1024)
        how = rng.choice(["text", "binary", "fragments", "valid message"])
        if how == "text":
            data = wsframes.text(rng.randbytes(size).hex()[:size])
        elif how == "binary":
            data = wsframes.binary(rng.randbytes(size))
        elif how == "fragments":
            body = encode({"type": "message", "message": "f" * size}).encode()
            cuts = list(range(16 * 1024, len(body), 16 * 1024))
            data = b"".join(wsframes.fragments(body, cuts))
        else:
            # A well-formed chat message whose text alone is too big: 1009
            # before any check of its length.
            data = wsframes.text(encode({"type": "message", "message": "o" * size}))
        follower = self.token()
        after = wsframes.text(self.chat_message(follower, joined))
        return Case(
            Kind.OVERSIZED,
            data + after,
            frames=2,
            closes=frozenset({TOO_BIG}),
            forbidden=(follower,),
        )

    def _bad_fragments(self, joined: str | None) -> Case:
        rng = self.rng
        body = encode({"type": "ping"}).encode()
        how = rng.choice(
            ["continuation first", "text inside", "binary inside", "control in pieces"]
        )
        if how == "continuation first":
            data = wsframes.continuation(body)
        elif how == "text inside":
            data = wsframes.text(body[:3], fin=False) + wsframes.text(body)
        elif how == "binary inside":
            data = wsframes.text(body[:3], fin=False) + wsframes.binary(body)
        else:
            data = wsframes.frame(wsframes.PING, b"x", fin=False) + wsframes.text(body)
        return Case(Kind.BAD_FRAGMENTS, data, frames=2, closes=frozenset({PROTOCOL_ERROR}))

    def _bad_wire(self, joined: str | None) -> Case:
        rng = self.rng
        body = encode({"type": "ping"}).encode()
        how = rng.choice(["reserved bits", "reserved opcode", "unmasked", "long control"])
        if how == "reserved bits":
            data = wsframes.frame(wsframes.TEXT, body, rsv=rng.randint(1, 7))
        elif how == "reserved opcode":
            opcode = rng.choice([*range(0x3, 0x8), *range(0xB, 0x10)])
            data = wsframes.frame(opcode, body)
        elif how == "unmasked":
            data = wsframes.frame(wsframes.TEXT, body, mask=False)
        else:
            size = wsframes.MAX_CONTROL_PAYLOAD + rng.randint(1, 1000)
            data = wsframes.frame(wsframes.PING, b"p" * size)
        return Case(Kind.BAD_WIRE, data, closes=frozenset({PROTOCOL_ERROR}))

    def _after_close(self, joined: str | None) -> Case:
        """The client's close, then valid messages anyway: none of them is relayed."""
        followers = [self.token() for _ in range(self.rng.randint(1, 3))]
        data = wsframes.close(NORMAL) + b"".join(
            wsframes.text(self.chat_message(text, joined)) for text in followers
        )
        return Case(
            Kind.AFTER_CLOSE,
            data,
            frames=1 + len(followers),
            closes=frozenset({NORMAL}),
            forbidden=tuple(followers),
        )

    def _error_storm(self, joined: str | None) -> Case:
        """On a connection of its own: 51 bad frames close it with 4008; what follows is lost."""
        rng = self.rng
        bad = [
            rng.choice(["{", "[]", '{"type":"nope"}', '{"message":5}', "null", '"x"'])
            for _ in range(ERROR_LIMIT + 1)
        ]
        follower = self.token()
        after = self.chat_message(follower, joined)
        data = b"".join(wsframes.text(text) for text in bad) + wsframes.text(after)
        codes = {protocol.INVALID_JSON, protocol.INVALID_FRAME, protocol.INVALID_MESSAGE}
        return Case(
            Kind.ERROR_STORM,
            data,
            frames=len(bad) + 1,
            codes=frozenset(codes),
            errors=len(bad),
            closes=frozenset({TOO_MANY_ERRORS}),
            forbidden=(follower,),
            fresh=True,
        )


# How often each kind comes, relatively: mostly valid and nearly valid frames,
# where the chat's own logic is; the wire-level kinds have a handful of
# variants each, so a few of them cover it; a storm costs 52 frames and a
# connection of its own.
WEIGHTS = {
    Kind.MESSAGE: 22,
    Kind.PING: 3,
    Kind.TYPING: 2,
    Kind.FRAGMENTED: 6,
    Kind.BROKEN_FIELD: 20,
    Kind.JSON_EDGE: 5,
    Kind.MUTATED: 14,
    Kind.RANDOM_TEXT: 6,
    Kind.RANDOM_BYTES_TEXT: 4,
    Kind.RANDOM_BINARY: 4,
    Kind.SURROGATE: 1,
    Kind.OVERSIZED: 2,
    Kind.BAD_FRAGMENTS: 1,
    Kind.BAD_WIRE: 1,
    Kind.AFTER_CLOSE: 1,
    Kind.ERROR_STORM: 0.15,
}
# How a connection that has not joined weighs the kinds (see Generator.next).
UNJOINED_WEIGHTS = {Kind.BROKEN_FIELD: 3, Kind.MESSAGE: 0.3, Kind.FRAGMENTED: 0.3}

# Every kind of case, for a warm-up that has met each before memory is
# measured (a rejoin needs a connection before it: the fuzzer makes those).
EVERY_KIND = [kind for kind in Kind if kind not in (Kind.JOIN, Kind.REJOIN)]
