"""`manage.py chat_moderate`: the live members, kicks and bans, from the command line.

    chat_moderate members [ROOM]
    chat_moderate kick ROOM NAME
    chat_moderate ban (--name NAME | --address ADDR) [--room ROOM] [--minutes N] [--reason TEXT]
    chat_moderate unban ID

A bad value is an error naming the argument, exit status 1, nothing
changed; what the argument parser itself refuses exits with 2.
"""

from __future__ import annotations

import json
from collections import defaultdict

from asgiref.sync import async_to_sync
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from chat.moderation import services as moderation
from chat.presence import LiveMember, get_presence
from chat.rooms import ROOM_SLUG_RE

# The model's fields as the `ban` arguments name them.
BAN_OPTIONS = {
    "name": "--name",
    "address": "--address",
    "room": "--room",
    "reason": "--reason",
    "expires_at": "--minutes",
}


class Command(BaseCommand):
    help = "Moderate the chat: list the live members, kick a member, ban or unban."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        members = actions.add_parser(
            "members", help="Print the members of every room (or of ROOM) now, as JSON."
        )
        members.add_argument("room", nargs="?", metavar="ROOM")
        kick = actions.add_parser(
            "kick", help="Close the connection of NAME in ROOM (4401); they may rejoin by hand."
        )
        kick.add_argument("room", metavar="ROOM")
        kick.add_argument("name", metavar="NAME", help="matched regardless of case")
        ban = actions.add_parser(
            "ban", help="Ban a name, an address or network, or both; prints the ban's id."
        )
        ban.add_argument("--name", default="", help="a name, matched regardless of case")
        ban.add_argument(
            "--address", default="", help="an IPv4 or IPv6 address, or a network (CIDR)"
        )
        ban.add_argument("--room", default="", help="one room's slug; default: every room")
        ban.add_argument("--minutes", type=int, help="how long it lasts; default: until lifted")
        ban.add_argument("--reason", default="", help="shown to the banned person")
        unban = actions.add_parser("unban", help="Lift the ban with this id.")
        unban.add_argument("id", type=int, metavar="ID")

    def handle(self, *args, action: str, **options) -> None:
        if action == "members":
            self.members(room=options["room"])
        elif action == "kick":
            self.kick(room=options["room"], name=options["name"])
        elif action == "ban":
            self.ban(
                **{key: options[key] for key in ("name", "address", "room", "minutes")},
                reason=options["reason"],
            )
        else:
            self.unban(ban_id=options["id"])

    def members(self, *, room: str | None) -> None:
        if room is not None:
            room = room_argument(room)
        if not moderation.members_are_shared():
            raise CommandError(
                "Without Redis the members are in the memory of the running server "
                "process: its admin page shows them (/admin/chat/live/)."
            )
        members = async_to_sync(read_members)(room)
        self.stdout.write(json.dumps([as_json(member) for member in members], indent=2))

    def kick(self, *, room: str, name: str) -> None:
        room = room_argument(room)
        name = name.strip()
        if not name:
            raise CommandError("NAME: give the name of the member to kick.")
        member = ""
        if moderation.members_are_shared():
            # Every process's members are in Redis: say at once if nobody is there.
            found = async_to_sync(read_members)(room, name)
            if not found:
                raise CommandError(f"Nobody called {name} is in {room}; nobody was kicked.")
            name, member = found[0].name, found[0].member
        kick = moderation.kick_create(room=room, name=name, member=member)
        if not moderation.kick_wait(kick=kick):
            moderation.kick_withdraw(kick=kick)
            raise CommandError(
                f"Nobody called {name} is in {room} (no server process found them within "
                f"{moderation.KICK_WAIT_SECONDS:g} s); nobody was kicked."
            )
        self.stdout.write(f"Kicked {name} out of {room}.")

    def ban(self, *, name: str, address: str, room: str, minutes: int | None, reason: str) -> None:
        try:
            ban = moderation.ban_create(
                name=name, address=address, room=room, reason=reason, minutes=minutes
            )
        except ValidationError as error:
            raise CommandError(f"Nothing changed. {ban_problems(error)}") from None
        self.stdout.write(str(ban.id))

    def unban(self, *, ban_id: int) -> None:
        if not moderation.ban_lift(ban_id=ban_id):
            raise CommandError(f"There is no ban {ban_id}; nothing was lifted.")
        self.stdout.write(f"Lifted ban {ban_id}.")


def room_argument(room: str) -> str:
    if not ROOM_SLUG_RE.match(room):
        raise CommandError(
            f"ROOM: {room!r} is not a room; a room is 1 to 48 lowercase letters, digits, "
            "'-' or '_', starting with a letter or digit."
        )
    return room


def ban_problems(error: ValidationError) -> str:
    """The errors by argument, one sentence once even if it concerns two arguments."""
    by_message: dict[str, list[str]] = defaultdict(list)
    for field, messages in error.message_dict.items():
        for message in messages:
            by_message[message].append(BAN_OPTIONS.get(field, field))
    return "; ".join(
        f"{' and '.join(options)}: {message}" for message, options in by_message.items()
    )


async def read_members(room: str | None, name: str | None = None) -> list[LiveMember]:
    """The live members (of `room`, named `name`), the registry's connections closed after."""
    try:
        if name is None:
            return await moderation.live_members(room=room)
        assert room is not None
        return await moderation.members_named(room=room, name=name)
    finally:
        await get_presence().aclose()


def as_json(member: LiveMember) -> dict[str, str]:
    joined = member.joined_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "room": member.room,
        "name": member.name,
        "joined_at": joined,
        "address": member.address,
    }
