"""A command packed for the wire in RESP, Redis's protocol, as redis-py would pack it.

The layer packs one command per chat message (the numbering script's EVALSHA
with its eleven arguments). redis-py's `pack_commands` takes 7.0 µs for one
of them; this takes 2.6 (docs/performance.md, "Redis at 50 members, profiled").
It takes only what the chat sends: bytes, str (UTF-8) and int. redis-py's
encoder also takes floats and refuses bools; this refuses both.
"""

from __future__ import annotations

from collections.abc import Sequence

Arg = bytes | str | int


def pack(args: Sequence[Arg]) -> bytes:
    """One command as a RESP array of bulk strings; TypeError for an argument of another type."""
    out = [b"*%d\r\n" % len(args)]
    add = out.append
    for arg in args:
        kind = type(arg)
        if kind is bytes:
            data = arg
        elif kind is str:
            data = arg.encode()
        elif kind is int:
            data = b"%d" % arg
        else:
            raise TypeError(f"cannot send a {kind.__name__} to Redis: {arg!r}")
        add(b"$%d\r\n" % len(data))
        add(data)
        add(b"\r\n")
    return b"".join(out)
