"""`manage.py chat_moderate`: members, kick, ban and unban, and their refusals."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from chat import protocol
from chat.models import Ban, ChatSettings, Kick, Room
from chat.moderation import services
from chat.presence.redis import RedisPresence
from chat.testing import servers

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("chat_moderate", *args, stdout=out)
    return out.getvalue()


def refused(*args: str) -> str:
    with pytest.raises(CommandError) as error:
        run(*args)
    assert error.value.returncode == 1
    return str(error.value)


# ban and unban


def test_ban_prints_the_new_ban_id():
    ban_id = int(run("ban", "--name", " Ikki ", "--reason", "Spam"))
    ban = Ban.objects.get(pk=ban_id)
    assert (ban.name, ban.address, ban.room, ban.reason, ban.expires_at) == (
        "Ikki",
        "",
        "",
        "Spam",
        None,
    )


def test_ban_by_address_in_one_room_for_some_minutes():
    before = timezone.now()
    ban = Ban.objects.get(
        pk=int(run("ban", "--address", "203.0.113.0/24", "--room", "physics", "--minutes", "90"))
    )
    assert (ban.name, ban.address, ban.room) == ("", "203.0.113.0/24", "physics")
    assert (
        before + timedelta(minutes=90) <= ban.expires_at <= timezone.now() + timedelta(minutes=90)
    )


def test_ban_by_name_and_address_at_once():
    ban = Ban.objects.get(pk=int(run("ban", "--name", "Ikki", "--address", "2001:db8::7")))
    assert (ban.name, ban.address) == ("Ikki", "2001:db8::7")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((), "--name and --address: A ban needs a name, an address, or both."),
        (("--address", "203.0.113.300"), "--address: '203.0.113.300' is not an IP address"),
        (("--address", "10.1.2.3/8"), "--address: 10.1.2.3/8 has host bits set"),
        (("--name", "Ikki", "--room", "Bad Room"), "--room: Use 1 to 48 lowercase letters"),
        (("--name", "Ikki", "--minutes", "0"), "--minutes: A ban lasts a positive number"),
        (("--name", "Ikki", "--minutes", "-5"), "--minutes: A ban lasts a positive number"),
        (("--name", "x" * 101), "--name: Ensure this value has at most 100 characters"),
    ],
)
def test_a_bad_ban_names_the_argument_and_saves_nothing(args, says):
    message = refused("ban", *args)
    assert message.startswith("Nothing changed.") and says in message, message
    assert not Ban.objects.exists()


def test_a_ban_of_a_room_that_does_not_exist_without_ad_hoc_rooms():
    ChatSettings.load()
    ChatSettings.objects.update(allow_adhoc_rooms=False)
    assert "--room: There is no room nowhere" in refused(
        "ban", "--name", "Ikki", "--room", "nowhere"
    )
    Room.objects.create(slug="somewhere")
    assert int(run("ban", "--name", "Ikki", "--room", "somewhere"))


def test_unban_lifts_the_ban_and_says_so_when_there_is_none():
    ban_id = int(run("ban", "--name", "Ikki"))
    assert run("unban", str(ban_id)).strip() == f"Lifted ban {ban_id}."
    assert not Ban.objects.exists()
    assert refused("unban", str(ban_id)) == f"There is no ban {ban_id}; nothing was lifted."


# members and kick, in one process without Redis


def test_members_without_redis_points_to_the_admin_page():
    message = refused("members")
    assert "admin page" in message and "/admin/chat/live/" in message


@pytest.mark.parametrize(
    ("args", "says"),
    [(("Bad Room", "Ikki"), "ROOM: 'Bad Room' is not a room"), (("lobby", "  "), "NAME: give")],
)
def test_a_kick_with_a_bad_argument_names_it(args, says):
    assert says in refused("kick", *args)
    assert not Kick.objects.exists()


def test_a_kick_of_nobody_says_so_and_leaves_nothing_pending():
    started = time.monotonic()
    message = refused("kick", "lobby", "Nobody")
    assert message.startswith("Nobody called Nobody is in lobby")
    assert time.monotonic() - started >= services.KICK_WAIT_SECONDS
    assert not Kick.objects.exists()


async def test_a_kick_reaches_the_member_in_the_serving_process(connect):
    ikki, shun = await connect(), await connect()
    await ikki.join("Ikki")
    await shun.join("Shun")
    await ikki.receive_type("presence")
    # The command blocks while it waits for the kick to be carried out.
    said = await sync_to_async(run, thread_sensitive=False)("kick", "lobby", "IKKI")
    assert said.strip() == "Kicked IKKI out of lobby."
    assert await ikki.closed_with() == protocol.CLOSE_KICKED
    assert (await sync_to_async(Kick.objects.get)()).removed_at is not None


# The command line itself: exit statuses


def command_line(database, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "chat_moderate", *args],
        cwd=servers.PROJECT_DIR,
        env=servers.server_env(database),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "status", "says"),
    [
        (("ban", "--address", "nope"), 1, "--address: 'nope' is not an IP address"),
        (("ban", "--name", "Ikki", "--minutes", "soon"), 2, "--minutes: invalid int value"),
        (("unban", "first"), 2, "ID: invalid int value"),
        (("kick", "lobby"), 2, "the following arguments are required: NAME"),
        (("frobnicate",), 2, "invalid choice: 'frobnicate'"),
        (("unban", "12345"), 1, "There is no ban 12345"),
    ],
)
def test_exit_statuses_of_the_command_line(server_database, args, status, says):
    done = command_line(server_database, *args)
    assert done.returncode == status, done
    assert says in done.stderr, done.stderr
    assert done.stdout == ""


def test_a_ban_from_the_command_line_prints_only_its_id(server_database):
    done = command_line(server_database, "ban", "--name", "Ikki")
    assert done.returncode == 0, done
    assert done.stdout.strip().isdigit()


# members and kick with Redis: every process's members


@pytest.fixture
def shared_presence(redis_server):
    options = {"url": redis_server.url, "ttl": 10.0, "upkeep": False}
    config = {"BACKEND": "chat.presence.redis.RedisPresence", "OPTIONS": options}
    with override_settings(CHAT_PRESENCE=config):
        yield RedisPresence(**options)


@pytest.mark.redis
def test_members_with_redis_prints_every_process_member_as_json(shared_presence):
    async def join() -> None:
        await shared_presence.claim(
            room="lobby", name="Seiya", member="p1.a", address="203.0.113.7"
        )
        await shared_presence.claim(room="physics", name="Shun", member="p2.a", address="::1")
        await shared_presence.aclose()

    async_to_sync(join)()
    printed = json.loads(run("members"))
    assert [{k: v for k, v in m.items() if k != "joined_at"} for m in printed] == [
        {"room": "lobby", "name": "Seiya", "address": "203.0.113.7"},
        {"room": "physics", "name": "Shun", "address": "::1"},
    ]
    for member in printed:
        joined = timezone.datetime.fromisoformat(member["joined_at"])
        assert member["joined_at"].endswith("Z") and joined.utcoffset() == timedelta(0)
        assert abs(joined - timezone.now()) < timedelta(minutes=1)
    assert [m["name"] for m in json.loads(run("members", "physics"))] == ["Shun"]
    assert json.loads(run("members", "empty")) == []
    assert "ROOM: 'No Room' is not a room" in refused("members", "No Room")


@pytest.mark.redis
def test_a_kick_of_nobody_with_redis_says_so_at_once(shared_presence):
    started = time.monotonic()
    assert (
        refused("kick", "lobby", "Nobody") == "Nobody called Nobody is in lobby; nobody was kicked."
    )
    assert time.monotonic() - started < services.KICK_WAIT_SECONDS
    assert not Kick.objects.exists()
