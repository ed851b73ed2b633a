"""Presence: who is in which room, and how a large room hears its joins and leaves.

This module is the loader, in the manner of Channels' `ChannelLayerManager`
and Django's cache backends: `get_presence()` builds the backend named by
the CHAT_PRESENCE setting (beside CHANNEL_LAYERS) once per process, and a
change of that setting (tests' `override_settings`) forgets it. The backends
(chat.presence.memory, chat.presence.redis) import chat.presence.base and
never this module.

    CHAT_PRESENCE = {
        "BACKEND": "chat.presence.redis.RedisPresence",
        "OPTIONS": {"url": "redis://127.0.0.1:6379/0", "ttl": 10.0},
    }
"""

from __future__ import annotations

import functools

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from .base import Claim, Feed, LiveMember, Presence, Release

__all__ = ["Claim", "Feed", "LiveMember", "Presence", "Release", "get_presence"]

DEFAULT_BACKEND = "chat.presence.memory.LocalPresence"


@functools.cache
def get_presence() -> Presence:
    """This process's registry (its `feed` beside it), as CHAT_PRESENCE configures it."""
    config = getattr(settings, "CHAT_PRESENCE", {})
    backend = import_string(config.get("BACKEND", DEFAULT_BACKEND))
    return backend(**config.get("OPTIONS", {}))


@receiver(setting_changed)
def _forget_presence(*, setting: str, **kwargs: object) -> None:
    if setting == "CHAT_PRESENCE":
        get_presence.cache_clear()
