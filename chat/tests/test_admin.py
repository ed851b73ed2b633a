"""The admin: one settings row, rooms with search, filter and live member counts."""

import pytest
from asgiref.sync import async_to_sync

from chat.models import ChatSettings, Room
from chat.presence import get_presence

pytestmark = pytest.mark.django_db

SETTINGS_FORM = {
    "max_name_length": "20",
    "max_message_length": "500",
    "rate_limit_per_second": "2",
    "rate_limit_burst": "4",
    "typing_interval_seconds": "3",
    "allow_adhoc_rooms": "",
    "banner": "Be kind.",
}


ROOM_FORM = {"is_open": "on", "slow_mode_seconds": "0", "max_members": "0"}


def settings_url() -> str:
    return f"/admin/chat/chatsettings/{ChatSettings.load().pk}/change/"


def test_index_lists_the_chat_models(admin_client):
    body = admin_client.get("/admin/").content.decode()
    assert "Chat settings" in body and "Rooms" in body


def test_settings_list_opens_the_only_row(admin_client):
    response = admin_client.get("/admin/chat/chatsettings/")
    assert response.status_code == 302
    assert response["Location"] == settings_url()


def test_settings_page_loads_and_saves(admin_client):
    assert admin_client.get(settings_url()).status_code == 200
    response = admin_client.post(settings_url(), SETTINGS_FORM)
    assert response.status_code == 302
    settings = ChatSettings.load()
    assert (settings.max_name_length, settings.rate_limit_burst, settings.banner) == (
        20,
        4,
        "Be kind.",
    )
    assert settings.allow_adhoc_rooms is False


def test_settings_form_refuses_bad_values(admin_client):
    response = admin_client.post(settings_url(), {**SETTINGS_FORM, "rate_limit_burst": "0"})
    assert response.status_code == 200
    assert "The burst must be at least 1" in response.content.decode()
    assert ChatSettings.load().rate_limit_burst == 10


def test_no_second_row_and_no_delete(admin_client):
    ChatSettings.load()
    assert admin_client.get("/admin/chat/chatsettings/add/").status_code == 403
    assert admin_client.get(settings_url().replace("change", "delete")).status_code == 403


def test_rooms_search_filter_and_member_counts(admin_client):
    Room.objects.create(slug="physics", title="Physics 101")
    Room.objects.create(slug="closed-one", title="Old", is_open=False)
    presence = get_presence()
    claim = async_to_sync(presence.claim)
    claim(room="physics", name="Seiya", member="test.a")
    claim(room="physics", name="Shiryu", member="test.b")
    try:
        body = admin_client.get("/admin/chat/room/").content.decode()
        assert "Members now" in body
        assert '<td class="field-members_now">2</td>' in body
        found = admin_client.get("/admin/chat/room/?q=Physics").content.decode()
        assert "physics" in found and "closed-one" not in found
        closed = admin_client.get("/admin/chat/room/?is_open__exact=0").content.decode()
        assert "closed-one" in closed and ">physics<" not in closed
    finally:
        release = async_to_sync(presence.release)
        release(room="physics", name="Seiya", member="test.a")
        release(room="physics", name="Shiryu", member="test.b")


def test_room_add_validates_the_slug(admin_client):
    response = admin_client.post(
        "/admin/chat/room/add/", {**ROOM_FORM, "slug": "Bad Slug", "title": ""}
    )
    assert response.status_code == 200
    assert not Room.objects.filter(title="").exclude(slug="lobby").exists()
    response = admin_client.post(
        "/admin/chat/room/add/", {**ROOM_FORM, "slug": "good", "title": "Good"}
    )
    assert response.status_code == 302
    assert Room.objects.get(slug="good").is_open
