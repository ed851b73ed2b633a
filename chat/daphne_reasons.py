"""Make Daphne send the close that the application asks for: its reason, and 1012.

The ASGI `websocket.close` event carries a `reason`, and Channels' `close()`
puts it there, but Daphne calls autobahn's `sendClose` with the code alone
(django/daphne#374), so under `runserver` or `daphne` a banned person would
see 4451 without the reason. This passes the reason on; uvicorn sends it by
itself. The consumer cuts a reason to the 123 bytes a close frame holds
(chat.sanctions.close_reason), which autobahn would otherwise refuse.

autobahn's `sendClose` also refuses every code but 1000 and 3000-4999, the
application's codes, so a drain's 1012 (service restart, a code for
servers to send) would turn into 1011: that code goes out through
`sendCloseFrame`, the same close without the check.
Installed beside chat.daphne_limits; under any other server it does nothing.
"""

from . import protocol
from .daphne_patch import under_daphne, wrap_once

# Codes a server sends of its own accord, which autobahn keeps from applications.
SERVER_CODES = frozenset({protocol.CLOSE_SERVICE_RESTART})


def install() -> None:
    if not under_daphne():
        return
    from daphne.ws_protocol import WebSocketProtocol

    wrap_once(WebSocketProtocol, "handle_reply", _with_reason)


def _with_reason(original):
    def handle_reply(self, message):
        # Only a close of an accepted connection: a close during the
        # handshake is a refusal (HTTP 403), which carries no code or reason.
        if message.get("type") != "websocket.close" or self.state == self.STATE_CONNECTING:
            return original(self, message)
        code, reason = message.get("code") or 1000, message.get("reason")
        if code in SERVER_CODES:
            reason_utf8 = reason.encode() if reason else None
            self.sendCloseFrame(code=code, reasonUtf8=reason_utf8, isReply=False)
            return None
        if reason:
            self.sendClose(code=code, reason=reason)
            return None
        return original(self, message)

    return handle_reply
