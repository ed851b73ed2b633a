"""ChatSettings and Room validation, and what a fresh install contains."""

import sqlite3

import pytest
from django.core.exceptions import ValidationError

from chat.models import ChatSettings, Room

pytestmark = pytest.mark.django_db


def errors_of(instance) -> dict:
    with pytest.raises(ValidationError) as raised:
        instance.full_clean()
    return raised.value.message_dict


def test_defaults_match_the_contract():
    settings = ChatSettings.load()
    assert (settings.max_name_length, settings.max_message_length) == (32, 2000)
    assert (settings.rate_limit_per_second, settings.rate_limit_burst) == (5, 10)
    assert settings.typing_interval_seconds == 2
    assert settings.allow_adhoc_rooms is True
    assert settings.banner == ""


def test_there_is_only_ever_one_row():
    first = ChatSettings.load()
    second = ChatSettings(max_name_length=10)
    second.save()
    assert ChatSettings.objects.count() == 1
    assert second.pk == first.pk
    assert ChatSettings.load().max_name_length == 10


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_name_length", 0),
        ("max_name_length", 101),
        ("max_message_length", 0),
        ("max_message_length", 10_001),
        ("rate_limit_per_second", -1),
        ("typing_interval_seconds", -0.5),
    ],
)
def test_out_of_range_values_name_their_field(field, value):
    settings = ChatSettings.load()
    setattr(settings, field, value)
    assert field in errors_of(settings)


def test_burst_must_be_positive_while_rate_limiting_is_on():
    settings = ChatSettings.load()
    settings.rate_limit_burst = 0
    assert "rate_limit_burst" in errors_of(settings)
    settings.rate_limit_per_second = 0
    settings.full_clean()


@pytest.mark.parametrize("slug", ["Lobby", "-x", "_x", "a" * 49, "with space", ""])
def test_room_slug_follows_the_room_rule(slug):
    assert "slug" in errors_of(Room(slug=slug))


def test_room_slug_accepts_valid_names():
    Room(slug="a", title="").full_clean()
    Room(slug="z9_" + "-" * 45).full_clean()


@pytest.mark.server
def test_fresh_install_has_settings_row_and_lobby(server_database):
    with sqlite3.connect(server_database) as db:
        assert db.execute("select slug, is_open from chat_room").fetchall() == [("lobby", 1)]
        row = db.execute(
            "select allow_adhoc_rooms, max_message_length from chat_chatsettings"
        ).fetchall()
    assert row == [(1, 2000)]
