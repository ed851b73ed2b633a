"""Make Daphne answer an oversized WebSocket message with close code 1009.

Daphne passes its size limits to autobahn but leaves autobahn's `failByDrop`
on, so a client that sends too much sees the TCP connection dropped (1006)
instead of a close frame saying why. This switches it off for every Daphne
factory and caps the limits at CHAT_MAX_FRAME_BYTES, so `runserver` and a
plain `daphne chatsite.asgi:application` behave the same. Both import the
ASGI application before they build the factory, which is where this runs.
Under any other server (uvicorn) it does nothing.
"""

import functools
import sys

from django.conf import settings


def install() -> None:
    if "daphne.server" not in sys.modules:
        return
    from daphne.ws_protocol import WebSocketFactory

    if getattr(WebSocketFactory.setProtocolOptions, "chat_limits", False):
        return
    original = WebSocketFactory.setProtocolOptions
    limit = settings.CHAT_MAX_FRAME_BYTES

    @functools.wraps(original)
    def set_protocol_options(self, *args, **options):
        for option in ("maxMessagePayloadSize", "maxFramePayloadSize"):
            given = options.get(option) or 0
            options[option] = min(given, limit) if given > 0 else limit
        options["failByDrop"] = False
        return original(self, *args, **options)

    set_protocol_options.chat_limits = True
    WebSocketFactory.setProtocolOptions = set_protocol_options
