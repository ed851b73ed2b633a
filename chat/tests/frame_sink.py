"""A server's "chat.frames" write stood in by a sink that parses what it is given.

It reads the frames with websockets' own client protocol, as a client reads
them off its socket (chat.uvicorn_frames gives the real write).
"""

from __future__ import annotations

import json
from typing import Any

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from chat import frames


def parsed(data: bytes) -> list[Frame]:
    """The frames in `data`, as a websockets client reads them off its socket."""
    client = ClientProtocol(parse_uri("ws://127.0.0.1/"), state=State.OPEN, max_size=None)
    client.receive_data(data)
    assert client.parser_exc is None, client.parser_exc
    return [event for event in client.events_received() if isinstance(event, Frame)]


class Sink:
    """A server's "chat.frames" write: takes frames while `open`, refuses them otherwise."""

    def __init__(self) -> None:
        self.open = True
        self.data = bytearray()

    def write(self, frame: bytes) -> bool:
        if not self.open:
            return False
        self.data += frame
        return True

    def received(self) -> list[dict[str, Any]]:
        """Every frame written so far, decoded; the sink starts over."""
        found = parsed(bytes(self.data))
        self.data.clear()
        assert all(frame.opcode is Opcode.TEXT and frame.fin for frame in found)
        return [json.loads(frame.data) for frame in found]

    def extensions(self) -> dict[str, Any]:
        """The scope extensions of a server that writes with this sink."""
        return {frames.EXTENSION: {"write": self.write}}
