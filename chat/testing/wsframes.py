"""WebSocket frames as a client puts them on the wire (RFC 6455 section 5), broken at will.

Client libraries refuse to send what the protocol forbids (reserved bits,
unknown opcodes, an unmasked frame, a control frame in pieces), which is
exactly what a test of a server's answers needs to send; these functions
build any frame byte by byte. Pure: no I/O.
"""

from __future__ import annotations

import itertools
import os
import struct

CONTINUATION = 0x0
TEXT = 0x1
BINARY = 0x2
CLOSE = 0x8
PING = 0x9
# Opcodes 0x3-0x7 are reserved for data frames, 0xB-0xF for control frames.
RESERVED_OPCODE = 0x3
# A control frame carries at most this many bytes and is never fragmented.
MAX_CONTROL_PAYLOAD = 125


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bool = True,
    key: bytes | None = None,
) -> bytes:
    """One frame. `rsv`: the three reserved bits (0-7); a client must mask, unless told not to."""
    length = len(payload)
    first = (0x80 if fin else 0) | (rsv & 0x7) << 4 | (opcode & 0xF)
    masked = 0x80 if mask else 0
    if length < 126:
        head = struct.pack("!BB", first, masked | length)
    elif length < 1 << 16:
        head = struct.pack("!BBH", first, masked | 126, length)
    else:
        head = struct.pack("!BBQ", first, masked | 127, length)
    if not mask:
        return head + payload
    key = key or os.urandom(4)
    return head + key + _masked(payload, key)


def _masked(payload: bytes, key: bytes) -> bytes:
    """XOR with the key repeated, as one big integer: a frame of 70 KiB in microseconds."""
    if not payload:
        return b""
    repeated = (key * (len(payload) // 4 + 1))[: len(payload)]
    mixed = int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")
    return mixed.to_bytes(len(payload), "big")


def text(data: str | bytes, *, fin: bool = True) -> bytes:
    """A text frame; bytes are sent as they are, valid UTF-8 or not."""
    return frame(TEXT, data.encode() if isinstance(data, str) else data, fin=fin)


def binary(data: bytes) -> bytes:
    return frame(BINARY, data)


def continuation(data: bytes, *, fin: bool = True) -> bytes:
    return frame(CONTINUATION, data, fin=fin)


def fragments(data: bytes, cuts: list[int], *, opcode: int = TEXT) -> list[bytes]:
    """One message in pieces cut at the byte offsets `cuts` (inside a character, too)."""
    bounds = [0, *sorted(cut for cut in set(cuts) if 0 < cut < len(data)), len(data)]
    pieces = [data[start:end] for start, end in itertools.pairwise(bounds)]
    last = len(pieces) - 1
    return [
        frame(opcode if at == 0 else CONTINUATION, piece, fin=at == last)
        for at, piece in enumerate(pieces)
    ]


def close(code: int = 1000, reason: str = "") -> bytes:
    return frame(CLOSE, struct.pack("!H", code) + reason.encode())


def ping(data: bytes = b"") -> bytes:
    return frame(PING, data)
