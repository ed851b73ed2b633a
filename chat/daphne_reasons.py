"""Make Daphne send the close reason that the application gives (a ban's reason, SPEC).

The ASGI `websocket.close` event carries a `reason`, and Channels' `close()`
puts it there, but Daphne calls autobahn's `sendClose` with the code alone
(django/daphne#374), so under `runserver` or `daphne` a banned person would
see 4451 without the reason. This passes the reason on; uvicorn sends it by
itself. The consumer cuts a reason to the 123 bytes a close frame holds
(chat.sanctions.close_reason), which autobahn would otherwise refuse.
Installed beside chat.daphne_limits; under any other server it does nothing.
"""

from .daphne_patch import under_daphne, wrap_once


def install() -> None:
    if not under_daphne():
        return
    from daphne.ws_protocol import WebSocketProtocol

    wrap_once(WebSocketProtocol, "handle_reply", _with_reason)


def _with_reason(original):
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

    return handle_reply
