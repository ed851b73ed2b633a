"""The presence loader: the backend CHAT_PRESENCE names, once per process, forgotten on change."""

from __future__ import annotations

from django.test import override_settings

from chat.presence import get_presence
from chat.presence.memory import LocalPresence
from chat.presence.redis import RedisPresence


def test_the_backend_is_built_once_from_the_setting():
    assert isinstance(get_presence(), LocalPresence)
    assert get_presence() is get_presence()


def test_a_changed_setting_builds_the_named_backend_with_its_options():
    before = get_presence()
    config = {
        "BACKEND": "chat.presence.redis.RedisPresence",
        "OPTIONS": {"url": "redis://127.0.0.1:1/0", "ttl": 3.0, "upkeep": False},
    }
    with override_settings(CHAT_PRESENCE=config):
        presence = get_presence()
        assert isinstance(presence, RedisPresence)
        assert (presence.url, presence.ttl, presence.run_upkeep) == (
            "redis://127.0.0.1:1/0",
            3.0,
            False,
        )
    # Forgotten again when the setting is restored: not the Redis one.
    after = get_presence()
    assert isinstance(after, LocalPresence)
    assert after is not before
