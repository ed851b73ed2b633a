"""HTTP views: the chat page and the health probe."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from . import health
from .models import ChatSettings
from .rooms import DEFAULT_ROOM


def chat_page(request: HttpRequest, room: str = DEFAULT_ROOM) -> HttpResponse:
    """The single-file chat page for a room; the socket says if the room is closed."""
    settings = ChatSettings.load()
    return render(
        request,
        "chat/index.html",
        {
            "room": room,
            "banner": settings.banner,
            "max_name_length": settings.max_name_length,
            "max_message_length": settings.max_message_length,
        },
    )


async def healthz(request: HttpRequest) -> JsonResponse:
    """200 when every dependency answers, else 503 with the reasons."""
    checks = await health.probe()
    healthy = all(state == "ok" for state in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "error", **checks}, status=200 if healthy else 503
    )
