"""HTTP views: the chat page, the health probe and the metrics."""

import hmac

from django.conf import settings as django_settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from . import health, metrics
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
