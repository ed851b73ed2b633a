"""Make Daphne answer an oversized WebSocket message with close code 1009.

Daphne passes its size limits to autobahn but leaves autobahn's `failByDrop`
on, so a client that sends too much sees the TCP connection dropped (1006)
instead of a close frame saying why. This switches it off for every Daphne
factory and caps the limits at CHAT_MAX_FRAME_BYTES, so `runserver` and a
plain `daphne chatsite.asgi:application` behave the same. Both import the
ASGI application before they build the factory, which is where this runs.
Under any other server (uvicorn) it does nothing.
"""

from django.conf import settings

from .daphne_patch import under_daphne, wrap_once


def install() -> None:
    if not under_daphne():
        return
    from daphne.ws_protocol import WebSocketFactory

    wrap_once(WebSocketFactory, "setProtocolOptions", _capped)


def _capped(original):
    limit = settings.CHAT_MAX_FRAME_BYTES

    def set_protocol_options(self, *args, **options):
        for option in ("maxMessagePayloadSize", "maxFramePayloadSize"):
            given = options.get(option) or 0
            options[option] = min(given, limit) if given > 0 else limit
        options["failByDrop"] = False
        return original(self, *args, **options)

    return set_protocol_options
