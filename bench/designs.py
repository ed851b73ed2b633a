"""How the load generator speaks to each design: URLs, join and message frames.

The three designs differ only here. Every relayed chat message carries the
benchmark's own text, "phase|sender|seq|monotonic_ns", so a receiver can tell
who sent it, in which order, and how long it took.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson


@dataclass(frozen=True, slots=True)
class Design:
    """One server design as the load generator sees it."""

    # "chat": this project's protocol; "tutorial-fastapi": reference (a),
    # and reference (c), the bare relay, which speaks it (a member joins
    # with its handshake, and its frames come back as they were sent);
    # "tutorial-channels": reference (b).
    protocol: str

    def url(self, base: str, room: str, name: str) -> str:
        if self.protocol == "tutorial-fastapi":
            return f"{base}/ws/{room}/{name}"
        if self.protocol == "tutorial-channels":
            return f"{base}/ws/chat/{room}/"
        return f"{base}/websocket/ws_chat/{room}"

    def join_frame(self, name: str) -> str | None:
        """The frame that joins; None when the handshake itself joins."""
        if self.protocol == "chat":
            return orjson.dumps({"type": "join", "name": name}).decode()
        return None

    def is_joined(self, frame: bytes) -> bool:
        """Whether `frame` is the server's answer to the join frame.

        By its first bytes: the chat writes `type` first (chat.protocol), and
        a `joined` frame carries the whole room, so parsing each one would
        cost the generator O(N²) for N joins and make it, not the server,
        the limit of a reconnect storm.
        """
        return frame.startswith(b'{"type":"joined"')

    @staticmethod
    def message_frame(text: str) -> str:
        return orjson.dumps({"message": text}).decode()

    @staticmethod
    def relayed_text(frame: str | bytes) -> str | None:
        """The chat text of a relayed message, None for any other frame.

        Our frames say `"type": "message"`; the tutorials' frames have no type.
        """
        content = orjson.loads(frame)
        if content.get("type", "message") != "message":
            return None
        text = content.get("message")
        return text if isinstance(text, str) else None


DESIGNS = {
    "tutorial-fastapi": Design("tutorial-fastapi"),
    "tutorial-channels": Design("tutorial-channels"),
    "chat": Design("chat"),
}
