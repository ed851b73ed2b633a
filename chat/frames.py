"""A server's WebSocket text frame, encoded once for every member of a room.

A frame from server to client is never masked (RFC 6455, 5.1), so a text
frame is the same bytes for every connection that did not negotiate an
extension: one header (FIN and the text opcode, then the payload length in
7, 16 or 64 bits, 5.2) before the UTF-8 text. chat.uvicorn_frames writes it
to a socket directly, where the server's own send would frame the same text
once per member.
"""

from __future__ import annotations

import functools
import struct

# FIN set, opcode 0x1 (text): the first byte of every whole text frame.
_FIN_TEXT = 0x81
# The name of the ASGI scope extension through which a server takes such
# frames: {"write": Callable[[bytes], bool]} (chat.uvicorn_frames).
EXTENSION = "chat.frames"


@functools.lru_cache(maxsize=4)
def text_frame(text: str) -> bytes:
    """The whole, unmasked, uncompressed text frame carrying `text`.

    Cached: a room's fan-out asks for the frame of one text once per
    member in a row, and a str caches its own hash.
    """
    payload = text.encode()
    size = len(payload)
    if size < 126:
        header = bytes((_FIN_TEXT, size))
    elif size < 1 << 16:
        header = struct.pack("!BBH", _FIN_TEXT, 126, size)
    else:
        header = struct.pack("!BBQ", _FIN_TEXT, 127, size)
    return header + payload
