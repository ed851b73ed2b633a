"""Make Daphne send the close reason that the application gives (a ban's reason, SPEC).

The ASGI `websocket.close` event carries a `reason`, and Channels' `close()`
puts it there, but Daphne calls autobahn's `sendClose` with the code alone
(django/daphne#374), so under `runserver` or `daphne` a banned person would
see 4451 without the reason. This passes the reason on; uvicorn sends it by
itself. The consumer cuts a reason to the 123 bytes a close frame holds
(chat.sanctions.close_reason), which autobahn would otherwise refuse.
Installed beside chat.daphne_limits; under any other server it does nothing.
"""

import functools
import sys


def install() -> None:
    if "daphne.server" not in sys.modules:
        return
    from daphne.ws_protocol import WebSocketProtocol

    if getattr(WebSocketProtocol.handle_reply, "chat_reasons", False):
        return
    original = WebSocketProtocol.handle_reply

    @functools.wraps(original)
    def handle_reply(self, message):
        # Only a close of an accepted connection with a reason: a close during
        # the handshake is a refusal (HTTP 403), which carries no reason.
        if (
            message.get("type") == "websocket.close"
            and message.get("reason")
            and self.state != self.STATE_CONNECTING
        ):
            self.sendClose(code=message.get("code") or 1000, reason=message["reason"])
            return None
        return original(self, message)

    handle_reply.chat_reasons = True
    WebSocketProtocol.handle_reply = handle_reply
