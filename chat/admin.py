"""Admin for the chat settings (one row), the rooms, the bans and the kicks' history.

The live members page, where kicks are made, is part of the chat's admin
site (chat.admin_site).
"""

from __future__ import annotations

from asgiref.sync import async_to_sync
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone

from .forms import ChatSettingsForm
from .models import Ban, ChatSettings, Kick, Room
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
    """The rooms with their members now; below them, the ad-hoc rooms that have members."""

    list_display = ["slug", "title", "is_open", "slow_mode_seconds", "max_members"]
    list_filter = ["is_open"]
    search_fields = ["slug", "title"]
    list_editable = ["is_open"]

    def changelist_view(self, request: HttpRequest, extra_context=None):
        # One presence read for the whole page, not one per row.
        counts = request.chat_member_counts = async_to_sync(get_presence().counts)()
        named = set(Room.objects.filter(slug__in=counts).values_list("slug", flat=True))
        adhoc = sorted((slug, count) for slug, count in counts.items() if slug not in named)
        context = {"adhoc_rooms": adhoc, **(extra_context or {})}
        return super().changelist_view(request, extra_context=context)

    def get_list_display(self, request: HttpRequest):
        counts = getattr(request, "chat_member_counts", {})

        @admin.display(description="members now")
        def members_now(room: Room) -> int:
            return counts.get(room.slug, 0)

        return [*self.list_display, members_now]


class BanStatusFilter(admin.SimpleListFilter):
    """Active (no expiry, or one still to come) or expired."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("active", "Active"), ("expired", "Expired")]

    def queryset(self, request, queryset: QuerySet[Ban]) -> QuerySet[Ban]:
        if self.value() == "active":
            return queryset.active(timezone.now())
        if self.value() == "expired":
            return queryset.expired(timezone.now())
        return queryset


class BanScopeFilter(admin.SimpleListFilter):
    """Bans of every room, or of one room."""

    title = "rooms"
    parameter_name = "scope"

    def lookups(self, request, model_admin):
        return [("all", "Every room"), ("one", "One room")]

    def queryset(self, request, queryset: QuerySet[Ban]) -> QuerySet[Ban]:
        if self.value() == "all":
            return queryset.filter(room="")
        if self.value() == "one":
            return queryset.exclude(room="")
        return queryset


@admin.register(Ban)
class BanAdmin(admin.ModelAdmin):
    """Bans: saved here, they close matching connections in every process within 5 s.

    Deleting a ban lifts it. The add form takes its first values from the
    query string (`?name=...&address=...&room=...`), as the live members
    page links to it.
    """

    list_display = ["id", "name", "address", "rooms", "reason", "expires_at", "active"]
    list_display_links = ["id", "name"]
    list_filter = [BanStatusFilter, BanScopeFilter, "room"]
    search_fields = ["name", "address", "room", "reason"]
    fields = ["name", "address", "room", "reason", "expires_at", "created_at"]
    readonly_fields = ["created_at"]
    date_hierarchy = "created_at"

    @admin.display(description="room", ordering="room")
    def rooms(self, ban: Ban) -> str:
        return ban.room or "every room"

    @admin.display(description="active", boolean=True)
    def active(self, ban: Ban) -> bool:
        return ban.is_active(timezone.now())


@admin.register(Kick)
class KickAdmin(admin.ModelAdmin):
    """The kicks made, read-only: a kick is made on the live members page."""

    list_display = ["name", "room", "created_at", "removed_at"]
    list_filter = ["room"]
    search_fields = ["name", "room"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Kick | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Kick | None = None) -> bool:
        return False
