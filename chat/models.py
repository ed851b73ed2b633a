"""The chat's editable settings (one row) and its rooms."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from . import defaults
from .rooms import ROOM_SLUG_RE

# A chat message must fit, JSON-escaped, in one 64 KiB frame.
MAX_MESSAGE_LENGTH_CEILING = 10_000
MAX_NAME_LENGTH_CEILING = 100


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
    allow_adhoc_rooms = models.BooleanField(
        default=defaults.ALLOW_ADHOC_ROOMS,
        help_text="Any valid room name opens a room; off: only rooms listed here exist.",
    )
    banner = models.TextField(
        blank=True,
        max_length=500, help_text="Text shown at the top of the chat page."
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

    slug = models.CharField(
        max_length=48,
        unique=True,
        validators=[
            RegexValidator(
                ROOM_SLUG_RE,
                "Use 1 to 48 lowercase letters, digits, '-' or '_', "
                "starting with a letter or digit.",
            )
        ],
    )
    title = models.CharField(max_length=100, blank=True)
    is_open = models.BooleanField(default=True, help_text="A closed room refuses connections.")

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.title or self.slug
