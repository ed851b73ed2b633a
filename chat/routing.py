"""WebSocket URLs."""

from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import re_path

from .consumers import ChatConsumer
from .rooms import ROOM_SLUG_PATTERN, SOCKET_PREFIX


class RefuseConsumer(AsyncWebsocketConsumer):
    """Any other WebSocket path: refuse the handshake (HTTP 403)."""

    async def connect(self) -> None:
        await self.close()


websocket_urlpatterns = [
    re_path(rf"^{SOCKET_PREFIX}/?$", ChatConsumer.as_asgi()),
    re_path(rf"^{SOCKET_PREFIX}/(?P<room>{ROOM_SLUG_PATTERN})/?$", ChatConsumer.as_asgi()),
    re_path(r"", RefuseConsumer.as_asgi()),
]
