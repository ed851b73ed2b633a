"""HTTP views: the chat page, the health probe and the metrics."""

from __future__ import annotations

import asyncio
import hmac
import logging

from django.conf import settings as django_settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import get_language
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from . import drain, health, metrics
from .conf import get_config
from .models import Room
from .page import bcp47, page_config
from .presence import get_presence
from .redis.errors import REDIS_ERRORS
from .rooms import DEFAULT_ROOM, ROOM_SLUG_RE

logger = logging.getLogger(__name__)

# The page shows how many were in the room when it was served; a registry
# that does not answer this fast leaves the count out rather than the page.
PAGE_COUNT_TIMEOUT_SECONDS = 0.5


async def chat_page(request: HttpRequest, room: str = DEFAULT_ROOM) -> HttpResponse:
    """The single-file chat page for a room; the socket says if the room is closed."""
    config = await get_config()
    title = await Room.objects.filter(slug=room).values_list("title", flat=True).afirst()
    return render(
        request,
        "chat/index.html",
        {
            "room": room,
            "title": title or "",
            "banner": config.banner,
            "count": await _member_count(room),
            "language": bcp47(get_language()),
            "page_config": page_config(room=room, config=config),
        },
    )


async def _member_count(room: str) -> int | None:
    """How many are in the room now, or None if the registry cannot say quickly."""
    try:
        counts = await asyncio.wait_for(get_presence().counts(), PAGE_COUNT_TIMEOUT_SECONDS)
    except (TimeoutError, *REDIS_ERRORS) as error:
        logger.warning("chat page of %s served without a member count: %r", room, error)
        return None
    return counts.get(room, 0)


def room_redirect(request: HttpRequest, room: str) -> HttpResponse:
    """`/websocket/Games/` (capitals, white space around) is the room `games`."""
    slug = room.strip().lower()
    if slug == room or not ROOM_SLUG_RE.match(slug):
        raise Http404("No such room.")
    return redirect("chat-room", permanent=True, room=slug)


async def healthz(request: HttpRequest) -> JsonResponse:
    """200 when every dependency answers, else 503 with the reasons; 503 while draining."""
    if drain.draining():
        # Stopping (chat.drain): a load balancer sends nobody here any more.
        return JsonResponse({"status": "draining"}, status=503)
    checks = await health.probe()
    healthy = all(state == "ok" for state in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "error", **checks}, status=200 if healthy else 503
    )


def metrics_page(request: HttpRequest) -> HttpResponse:
    """This process's figures in the Prometheus text format, for the bearer of the token.

    404 while `CHAT_METRICS_TOKEN` is unset (nothing is counted then), 401
    without `Authorization: Bearer <token>`. Synchronous: Django runs it in
    its thread, so the process_* figures' reads of /proc stay off the event
    loop; the chat's own figures are ints and locked counters, safe to read
    from there.
    """
    token = django_settings.CHAT_METRICS_TOKEN
    if not token:
        raise Http404("Metrics are not enabled.")
    if not _bears(request, token):
        response = HttpResponse("A valid bearer token is required.\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(metrics.REGISTRY), content_type=CONTENT_TYPE_LATEST)


def _bears(request: HttpRequest, token: str) -> bool:
    """Whether the request's Authorization header is `Bearer <token>`, compared in constant time."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    # Bytes, not str: compare_digest refuses a str that is not ASCII, and a
    # header may be anything (Django decodes headers as latin-1).
    given = credentials.strip().encode("utf-8", "replace")
    return scheme.lower() == "bearer" and hmac.compare_digest(given, token.encode())
