"""HTTP URLs of the chat."""

from django.urls import path, re_path
from django.views.generic import RedirectView

from . import views
from .rooms import ROOM_SLUG_PATTERN

urlpatterns = [
    path("", RedirectView.as_view(url="/websocket/", permanent=False)),
    path("websocket/", views.chat_page, name="chat-lobby"),
    re_path(rf"^websocket/(?P<room>{ROOM_SLUG_PATTERN})/$", views.chat_page, name="chat-room"),
    # Anything else in one path segment: a slug typed with capitals or spaces
    # redirects to the room, the rest is a 404.
    re_path(r"^websocket/(?P<room>[^/]+)/$", views.room_redirect),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics_page, name="metrics"),
]
