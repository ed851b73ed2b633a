"""The chat's editable settings (one row), its rooms, and the moderators' bans and kicks."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

from . import defaults, sanctions
from .rooms import ROOM_SLUG_RE

# A chat message must fit, JSON-escaped, in one 64 KiB frame.
MAX_MESSAGE_LENGTH_CEILING = 10_000
MAX_NAME_LENGTH_CEILING = 100
# Slow mode longer than a day is a closed room; more members than this in
# one room is beyond what one room's fan-out was measured at (docs/performance.md).
MAX_SLOW_MODE_SECONDS = 86_400
MAX_MEMBERS_CEILING = 100_000
# The recovery window lives in memory or Redis per room: bounded so that a
# typo cannot make every room hold a million messages.
RECOVERY_MESSAGES_CEILING = 10_000
RECOVERY_SECONDS_CEILING = 3600
# Longest address or network as text: a full IPv6 address with a prefix.
MAX_ADDRESS_LENGTH = 49

ROOM_SLUG_VALIDATOR = RegexValidator(
    ROOM_SLUG_RE,
    "Use 1 to 48 lowercase letters, digits, '-' or '_', starting with a letter or digit.",
)


class ChatSettings(models.Model):
    """The limits every process enforces; exactly one row, with pk 1."""

    SINGLETON_PK = 1

    max_name_length = models.PositiveIntegerField(
        default=defaults.MAX_NAME_LENGTH,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_NAME_LENGTH_CEILING)],
        help_text="Longest name, in characters, after trimming white space.",
    )
    max_message_length = models.PositiveIntegerField(
        default=defaults.MAX_MESSAGE_LENGTH,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_MESSAGE_LENGTH_CEILING)],
        help_text="Longest chat message, in characters.",
    )
    rate_limit_per_second = models.FloatField(
        default=defaults.RATE_LIMIT_PER_SECOND,
        validators=[MinValueValidator(0), MaxValueValidator(1000)],
        help_text="Messages a connection may send each second on average; 0 turns the limit off.",
    )
    rate_limit_burst = models.PositiveIntegerField(
        default=defaults.RATE_LIMIT_BURST,
        validators=[MaxValueValidator(10_000)],
        help_text="Messages a connection may send at once before the average applies.",
    )
    typing_interval_seconds = models.FloatField(
        default=defaults.TYPING_INTERVAL_SECONDS,
        validators=[MinValueValidator(0), MaxValueValidator(60)],
        help_text="At most one 'is typing' event per member in this many seconds.",
    )
    recovery_messages = models.PositiveIntegerField(
        default=defaults.RECOVERY_MESSAGES,
        validators=[MaxValueValidator(RECOVERY_MESSAGES_CEILING)],
        help_text=(
            "A room's last messages kept, in memory or Redis only, for members who reconnect"
            " within the window; 0 turns recovery off."
        ),
    )
    recovery_seconds = models.PositiveIntegerField(
        default=defaults.RECOVERY_SECONDS,
        validators=[MinValueValidator(1), MaxValueValidator(RECOVERY_SECONDS_CEILING)],
        help_text="No message older than this many seconds is kept for recovery.",
    )
    allow_adhoc_rooms = models.BooleanField(
        default=defaults.ALLOW_ADHOC_ROOMS,
        help_text="Any valid room name opens a room; off: only rooms listed here exist.",
    )
    banner = models.TextField(
        blank=True, max_length=500, help_text="Text shown at the top of the chat page."
    )

    class Meta:
        verbose_name = "chat settings"
        verbose_name_plural = "chat settings"

    def __str__(self) -> str:
        return "Chat settings"

    def clean(self) -> None:
        if self.rate_limit_per_second and self.rate_limit_burst < 1:
            raise ValidationError(
                {"rate_limit_burst": "The burst must be at least 1 while rate limiting is on."}
            )

    def save(self, *args, **kwargs) -> None:
        self.pk = self.SINGLETON_PK
        super().save(*args, **kwargs)

    @classmethod
    def load(cls) -> ChatSettings:
        """The settings row, created with the defaults if it is missing."""
        settings, _ = cls.objects.get_or_create(pk=cls.SINGLETON_PK)
        return settings


class Room(models.Model):
    """A room an operator has named; ad-hoc rooms need no row."""

    slug = models.CharField(max_length=48, unique=True, validators=[ROOM_SLUG_VALIDATOR])
    title = models.CharField(
        max_length=100, blank=True, help_text="The heading of the room's page; blank: the slug."
    )
    is_open = models.BooleanField(
        default=True,
        help_text="A closed room refuses connections and closes those it has (within 5 s).",
    )
    slow_mode_seconds = models.PositiveIntegerField(
        default=0,
        validators=[MaxValueValidator(MAX_SLOW_MODE_SECONDS)],
        help_text="Each member may send one message per this many seconds; 0 turns it off.",
    )
    max_members = models.PositiveIntegerField(
        default=0,
        validators=[MaxValueValidator(MAX_MEMBERS_CEILING)],
        help_text="Members the room holds at most; a join beyond is refused. 0: no limit.",
    )

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.title or self.slug


class BanQuerySet(models.QuerySet):
    @staticmethod
    def _applying(now: datetime) -> models.Q:
        return models.Q(expires_at=None) | models.Q(expires_at__gt=now)

    def active(self, now: datetime) -> BanQuerySet:
        """The bans that apply at `now`: no expiry, or one still to come."""
        return self.filter(self._applying(now))

    def expired(self, now: datetime) -> BanQuerySet:
        """The bans whose expiry has passed at `now`."""
        return self.exclude(self._applying(now))


class Ban(models.Model):
    """Keeps a name, an address or network, or both out of one room or all, for a while.

    Active from its creation until `expires_at` (blank: until it is deleted);
    an expired ban simply stops matching, as every read filters by
    `expires_at`, so nothing needs to clean them up.
    """

    name = models.CharField(
        max_length=MAX_NAME_LENGTH_CEILING,
        blank=True,
        help_text="A name, matched as names clash in a room (regardless of case).",
    )
    address = models.CharField(
        max_length=MAX_ADDRESS_LENGTH,
        blank=True,
        help_text="A client address or network, IPv4 or IPv6: 203.0.113.7, 203.0.113.0/24, "
        "2001:db8::/32.",
    )
    room = models.CharField(
        max_length=48,
        blank=True,
        validators=[ROOM_SLUG_VALIDATOR],
        help_text="A room's slug; blank: every room.",
    )
    reason = models.CharField(
        max_length=500,
        blank=True,
        help_text="Shown to the banned person; a close frame carries its first 123 bytes.",
    )
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="When the ban ends; blank: until it is deleted."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = BanQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["expires_at"])]

    def is_active(self, now: datetime) -> bool:
        """Whether the ban applies at `now` (as `Ban.objects.active(now)` selects)."""
        return self.expires_at is None or self.expires_at > now

    def __str__(self) -> str:
        who = " at ".join(part for part in (self.name, self.address) if part)
        return f"{who} in {self.room}" if self.room else f"{who} in every room"

    def clean(self) -> None:
        self.name = self.name.strip()
        self.address = self.address.strip()
        errors: dict[str, str] = {}
        if not self.name and not self.address:
            message = "A ban needs a name, an address, or both."
            errors.update(name=message, address=message)
        if self.address:
            try:
                self.address = sanctions.format_network(sanctions.parse_network(self.address))
            except ValueError as error:
                errors["address"] = str(error)
        if (
            self.room
            and ROOM_SLUG_RE.match(self.room)
            and not ChatSettings.load().allow_adhoc_rooms
            and not Room.objects.filter(slug=self.room).exists()
        ):
            errors["room"] = f"There is no room {self.room} (ad-hoc rooms are off)."
        if self._state.adding and self.expires_at is not None and self.expires_at <= timezone.now():
            errors["expires_at"] = "That time has passed: a new ban must end in the future."
        if errors:
            raise ValidationError(errors)


class Kick(models.Model):
    """A request to remove a member from a room now (close 4401), and what came of it.

    Admin and the command line write one; every server process reads the
    pending ones with the settings (chat.conf) and the connection it names
    closes and records that it was removed. The rows are the kicks' history.
    """

    room = models.CharField(max_length=48, validators=[ROOM_SLUG_VALIDATOR])
    name = models.CharField(max_length=MAX_NAME_LENGTH_CEILING)
    # The connection's channel name, when the kick was made from the live
    # members; blank: whoever holds the name in the room.
    member = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    removed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the member's connection closed; blank: pending."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("view_live_members", "Can see the live members and their addresses")]

    def __str__(self) -> str:
        return f"{self.name} from {self.room}"
