"""The chat's admin site: Django's, with the live members page in the Chat section.

The live members are not a model (they live in the presence registry, in
Redis or in the serving process), so the page is a view of the site, listed
in the index and the sidebar beside the chat's models. Kicks are made there.
"""

from __future__ import annotations

from itertools import groupby
from typing import Any

from asgiref.sync import async_to_sync
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_http_methods

from .models import Kick
from .moderation import services as moderation
from .rooms import ROOM_SLUG_RE

VIEW_PERMISSION = "chat.view_live_members"
KICK_PERMISSION = "chat.add_kick"
BAN_PERMISSION = "chat.add_ban"


class ChatAdminSite(admin.AdminSite):
    site_header = "Chat administration"
    site_title = "Chat admin"

    def get_urls(self):
        live = path(
            "chat/live/",
            self.admin_view(require_http_methods(["GET", "POST"])(self.live_members_view)),
            name="chat_live_members",
        )
        return [live, *super().get_urls()]

    def get_app_list(self, request: HttpRequest, app_label: str | None = None):
        app_list = super().get_app_list(request, app_label)
        if not request.user.has_perm(VIEW_PERMISSION):
            return app_list
        for app in app_list:
            if app["app_label"] == "chat":
                app["models"].append(
                    {
                        "name": "Live members",
                        "object_name": "LiveMembers",
                        "perms": {"add": False, "change": False, "delete": False, "view": True},
                        "admin_url": reverse("admin:chat_live_members", current_app=self.name),
                        "add_url": None,
                        "view_only": True,
                    }
                )
                app["models"].sort(key=lambda model: model["name"])
        return app_list

    def live_members_view(self, request: HttpRequest) -> HttpResponse:
        """Every room with members now, each member's name, join time and address; kick."""
        if not request.user.has_perm(VIEW_PERMISSION):
            raise PermissionDenied
        if request.method == "POST":
            return self._kick(request)
        room = request.GET.get("room", "").strip()
        if room and not ROOM_SLUG_RE.match(room):
            room = ""
        members = async_to_sync(moderation.live_members)(room=room or None)
        context: dict[str, Any] = {
            **self.each_context(request),
            "title": f"Live members of {room}" if room else "Live members",
            "room": room,
            "rooms": [(slug, list(group)) for slug, group in groupby(members, lambda m: m.room)],
            "count": len(members),
            "shared": moderation.members_are_shared(),
            "can_kick": request.user.has_perm(KICK_PERMISSION),
            "can_ban": request.user.has_perm(BAN_PERMISSION),
        }
        return TemplateResponse(request, "admin/chat/live_members.html", context)

    def _kick(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm(KICK_PERMISSION):
            raise PermissionDenied
        back = reverse("admin:chat_live_members", current_app=self.name)
        try:
            kick = moderation.kick_create(
                room=request.POST.get("room", ""),
                name=request.POST.get("name", ""),
                member=request.POST.get("member", ""),
            )
        except ValidationError as error:
            messages.error(request, f"Nobody was kicked: {'; '.join(error.messages)}")
            return HttpResponseRedirect(back)
        self.get_model_admin(Kick).log_addition(request, kick, "Kicked from the live members page.")
        messages.success(
            request,
            f"Kicked {kick.name} out of {kick.room}: the connection closes within 5 s.",
        )
        return HttpResponseRedirect(back)
