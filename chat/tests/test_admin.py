"""The admin: one settings row, rooms with live member counts, live members, kicks, bans."""

from datetime import UTC, timedelta

import pytest
from asgiref.sync import async_to_sync
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.models import Permission
from django.utils import timezone

from chat.models import Ban, ChatSettings, Kick, Room
from chat.presence import get_presence

pytestmark = pytest.mark.django_db

SETTINGS_FORM = {
    "max_name_length": "20",
    "max_message_length": "500",
    "rate_limit_per_second": "2",
    "rate_limit_burst": "4",
    "typing_interval_seconds": "3",
    "recovery_messages": "50",
    "recovery_seconds": "60",
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


# Moderation: the live members, kicks and bans.

LIVE_URL = "/admin/chat/live/"


@pytest.fixture
def members():
    """Three members in the in-process registry, as the consumer claims them; freed after."""
    presence = get_presence()
    joined = [
        ("physics", "Seiya", "test.a", "203.0.113.7"),
        ("physics", "Shiryu", "test.b", "2001:db8::1"),
        ("adhoc-room", "Hyoga", "test.c", ""),
    ]
    for room, name, member, address in joined:
        async_to_sync(presence.claim)(room=room, name=name, member=member, address=address)
    yield joined
    for room, name, member, _ in joined:
        async_to_sync(presence.release)(room=room, name=name, member=member)


@pytest.fixture
def staff_client(client, django_user_model):
    """A staff member with the given permissions (codenames of the chat app)."""

    def login(*codenames: str):
        user = django_user_model.objects.create_user("moderator", password="x", is_staff=True)
        user.user_permissions.set(
            Permission.objects.filter(content_type__app_label="chat", codename__in=codenames)
        )
        client.force_login(user)
        return client

    return login


def test_the_index_links_to_the_live_members(admin_client):
    body = admin_client.get("/admin/").content.decode()
    assert f'<a href="{LIVE_URL}">Live members</a>' in body
    assert "Bans" in body and "Kicks" in body


def test_the_live_members_page_shows_every_room_name_time_and_address(admin_client, members):
    body = admin_client.get(LIVE_URL).content.decode()
    for room, name, _, address in members:
        assert f">{room}</a>" in body and f'<td class="field-name">{name}</td>' in body
        assert f'<td class="field-address">{address or "—"}</td>' in body
    today = timezone.now().astimezone(UTC).strftime("%Y-%m-%d")
    assert body.count(f'<td class="field-joined_at">{today} ') == 3
    assert body.count('value="Kick"') == 3
    assert "/admin/chat/ban/add/?name=Seiya&amp;room=physics&amp;address=203.0.113.7" in body
    one_room = admin_client.get(LIVE_URL, {"room": "physics"}).content.decode()
    assert "Seiya" in one_room and "Hyoga" not in one_room


def test_the_live_members_page_is_for_staff_with_the_permission(client, staff_client, members):
    anonymous = client.get(LIVE_URL)
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]
    assert staff_client().get(LIVE_URL).status_code == 403
    assert "Live members" not in client.get("/admin/").content.decode()


def test_a_moderator_who_may_not_kick_sees_no_kick_and_cannot_post(staff_client, members):
    moderator = staff_client("view_live_members")
    body = moderator.get(LIVE_URL).content.decode()
    assert "Seiya" in body and 'value="Kick"' not in body and "Ban…" not in body
    response = moderator.post(LIVE_URL, {"room": "physics", "name": "Seiya", "member": "test.a"})
    assert response.status_code == 403
    assert not Kick.objects.exists()


def test_a_kick_from_the_page_is_ordered_and_in_the_history(admin_client, admin_user, members):
    response = admin_client.post(
        LIVE_URL, {"room": "physics", "name": "Seiya", "member": "test.a"}, follow=True
    )
    assert "Kicked Seiya out of physics" in response.content.decode()
    kick = Kick.objects.get()
    assert (kick.room, kick.name, kick.member, kick.removed_at) == (
        "physics",
        "Seiya",
        "test.a",
        None,
    )
    entry = LogEntry.objects.get()
    assert (entry.user, entry.action_flag, entry.object_id) == (admin_user, ADDITION, str(kick.pk))
    assert entry.content_type.model_class() is Kick
    history = admin_client.get("/admin/").content.decode()
    assert "Seiya from physics" in history  # the index's recent actions


def test_a_kick_of_a_bad_room_changes_nothing(admin_client):
    response = admin_client.post(LIVE_URL, {"room": "Bad Room", "name": "Seiya"}, follow=True)
    assert "Nobody was kicked" in response.content.decode()
    assert not Kick.objects.exists() and not LogEntry.objects.exists()


BAN_FORM = {
    "name": "",
    "address": "",
    "room": "",
    "reason": "",
    "expires_at_0": "",
    "expires_at_1": "",
}


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({}, {"name": "A ban needs a name, an address, or both.",
              "address": "A ban needs a name, an address, or both."}),
        ({"address": "203.0.113.300"}, {"address": "is not an IP address or network"}),
        ({"address": "203.0.113.7/24"}, {"address": "the network is 203.0.113.0/24"}),
        ({"name": "Ikki", "room": "Bad Room"}, {"room": "Use 1 to 48 lowercase letters"}),
        ({"name": "Ikki", "expires_at_0": "2001-01-01", "expires_at_1": "12:00:00"},
         {"expires_at": "That time has passed"}),
    ],
)  # fmt: skip
def test_the_ban_form_names_the_field_and_saves_nothing(admin_client, fields, errors):
    response = admin_client.post("/admin/chat/ban/add/", {**BAN_FORM, **fields})
    assert response.status_code == 200
    form_errors = response.context["adminform"].form.errors
    for field, message in errors.items():
        assert message in " ".join(form_errors[field]), form_errors
    assert not Ban.objects.exists() and not LogEntry.objects.exists()


def test_a_ban_of_a_room_that_does_not_exist_is_refused_without_ad_hoc_rooms(admin_client):
    ChatSettings.objects.filter(pk=ChatSettings.load().pk).update(allow_adhoc_rooms=False)
    response = admin_client.post(
        "/admin/chat/ban/add/", {**BAN_FORM, "name": "Ikki", "room": "nowhere"}
    )
    assert "There is no room nowhere" in " ".join(response.context["adminform"].form.errors["room"])
    Room.objects.create(slug="somewhere")
    response = admin_client.post(
        "/admin/chat/ban/add/", {**BAN_FORM, "name": "Ikki", "room": "somewhere"}
    )
    assert response.status_code == 302


def test_a_ban_saved_in_admin_is_normalised_and_in_the_history(admin_client, admin_user):
    response = admin_client.post(
        "/admin/chat/ban/add/",
        {**BAN_FORM, "name": " Ikki ", "address": "2001:DB8::/32", "reason": "Spam"},
    )
    assert response.status_code == 302
    ban = Ban.objects.get()
    assert (ban.name, ban.address, ban.room, ban.expires_at) == ("Ikki", "2001:db8::/32", "", None)
    entry = LogEntry.objects.get()
    assert (entry.user, entry.action_flag, entry.content_type.model_class()) == (
        admin_user,
        ADDITION,
        Ban,
    )
    # Deleting the ban lifts it, and that is in the history too.
    admin_client.post(f"/admin/chat/ban/{ban.pk}/delete/", {"post": "yes"})
    assert not Ban.objects.exists()
    assert LogEntry.objects.filter(action_flag=DELETION, user=admin_user).count() == 1


def test_the_ban_form_starts_from_the_live_members_link(admin_client):
    body = admin_client.get(
        "/admin/chat/ban/add/", {"name": "Seiya", "room": "physics", "address": "203.0.113.7"}
    ).content.decode()
    assert 'value="Seiya"' in body and 'value="physics"' in body and 'value="203.0.113.7"' in body


def test_the_ban_list_searches_and_filters(admin_client):
    now = timezone.now()
    Ban.objects.create(name="Ikki", reason="spam links")
    Ban.objects.create(address="203.0.113.0/24", room="physics")
    Ban.objects.create(name="Shun", expires_at=now - timedelta(minutes=1))
    listed = admin_client.get("/admin/chat/ban/").content.decode()
    assert "Ikki" in listed and "203.0.113.0/24" in listed and "every room" in listed
    assert "Shun" in admin_client.get("/admin/chat/ban/", {"q": "shun"}).content.decode()
    found = admin_client.get("/admin/chat/ban/", {"q": "spam"}).content.decode()
    assert "Ikki" in found and "Shun" not in found
    active = admin_client.get("/admin/chat/ban/", {"status": "active"}).content.decode()
    assert "Ikki" in active and "Shun" not in active
    expired = admin_client.get("/admin/chat/ban/", {"status": "expired"}).content.decode()
    assert "Shun" in expired and "Ikki" not in expired
    one_room = admin_client.get("/admin/chat/ban/", {"scope": "one"}).content.decode()
    assert "203.0.113.0/24" in one_room and "Ikki" not in one_room


def test_the_room_list_shows_ad_hoc_rooms_with_members(admin_client, members):
    Room.objects.create(slug="physics", title="Physics")
    body = admin_client.get("/admin/chat/room/").content.decode()
    assert '<td class="field-members_now">2</td>' in body  # physics, a row of its own
    assert 'id="adhoc-rooms"' in body
    assert f'<a href="{LIVE_URL}?room=adhoc-room">adhoc-room</a>' in body
    assert ">physics</a></td>" not in body.split('id="adhoc-rooms"')[1]


def test_closing_a_room_in_the_list_is_in_the_history(admin_client, admin_user):
    room = Room.objects.create(slug="physics", title="Physics")
    response = admin_client.post(
        "/admin/chat/room/",
        {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-0-id": str(room.pk),
            "form-0-is_open": "",
            "_save": "Save",
        },
    )
    assert response.status_code == 302
    assert Room.objects.get(pk=room.pk).is_open is False
    entry = LogEntry.objects.get()
    assert (entry.user, entry.action_flag, entry.object_id) == (admin_user, CHANGE, str(room.pk))
