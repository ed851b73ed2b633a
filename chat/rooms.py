"""Room names: the slug rule shared by URLs, routing, models and the consumer."""

import re

# SPEC: a room slug matches [a-z0-9][a-z0-9_-]{0,47}.
ROOM_SLUG_PATTERN = r"[a-z0-9][a-z0-9_-]{0,47}"
ROOM_SLUG_RE = re.compile(rf"^{ROOM_SLUG_PATTERN}\Z")
DEFAULT_ROOM = "lobby"
# A room's WebSocket is SOCKET_PREFIX + slug (the lobby's also SOCKET_PREFIX alone).
SOCKET_PREFIX = "websocket/ws_chat"


def group_name(room: str) -> str:
    """The channel-layer group of a room (a valid group name for every slug)."""
    return f"chat.{room}"


def socket_path(room: str) -> str:
    """The path of a room's WebSocket, as the page connects to it."""
    return f"/{SOCKET_PREFIX}/{room}"
