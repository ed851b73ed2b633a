"""The WebSocket handshake's Origin check."""

from channels.security.websocket import OriginValidator
from django.conf import settings


class AllowedHostsOrNoOriginValidator(OriginValidator):
    """Refuse a handshake whose Origin is not an allowed host; accept one without Origin.

    Browsers always send Origin, so a foreign page cannot open a socket in a
    visitor's name. Command-line clients and bots send none, and SPEC accepts
    them; Channels' AllowedHostsOriginValidator would refuse them.
    """

    def __init__(self, application) -> None:
        allowed = list(settings.ALLOWED_HOSTS)
        if settings.DEBUG and not allowed:
            allowed = ["localhost", "127.0.0.1", "[::1]"]
        super().__init__(application, allowed)

    def valid_origin(self, parsed_origin) -> bool:
        if parsed_origin is None:
            return True
        return self.validate_origin(parsed_origin)
