"""Admin for the chat settings (one row) and the rooms."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from django.contrib import admin
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse

from .forms import ChatSettingsForm
from .models import ChatSettings, Room
from .presence import get_presence


@admin.register(ChatSettings)
class ChatSettingsAdmin(admin.ModelAdmin):
    """Exactly one row: no add once it exists, no delete; the list opens the row."""

    form = ChatSettingsForm

    list_display = [
        "__str__",
        "max_name_length",
        "max_message_length",
        "rate_limit_per_second",
        "allow_adhoc_rooms",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not ChatSettings.objects.exists() and super().has_add_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: ChatSettings | None = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context=None):
        settings = ChatSettings.load()
        return HttpResponseRedirect(reverse("admin:chat_chatsettings_change", args=[settings.pk]))


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ["slug", "title", "is_open"]
    list_filter = ["is_open"]
    search_fields = ["slug", "title"]
    list_editable = ["is_open"]

    def get_list_display(self, request: HttpRequest):
        # One presence read for the whole page, not one per row.
        counts = async_to_sync(get_presence().counts)()

        @admin.display(description="members now")
        def members_now(room: Room) -> int:
            return counts.get(room.slug, 0)

        return [*self.list_display, members_now]
