"""What moderators do, as plain functions: for admin, `chat_moderate` and the consumer.

Bans and kicks are rows that every server process reads with its settings
(chat.conf, chat.moderation.watch): the same path from admin in any process
and from the command line, with one process or many.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from channels.db import database_sync_to_async
from django.core.exceptions import ValidationError
from django.db import DatabaseError
from django.utils import timezone

from ..models import Ban, Kick
from ..presence import LiveMember, get_presence
from ..sanctions import names_match

logger = logging.getLogger(__name__)

# SPEC: moderation is effective in every process within 5 s; a kick that no
# process carried out by then found nobody to remove.
KICK_WAIT_SECONDS = 5.0
KICK_POLL_SECONDS = 0.1


def ban_create(
    *,
    name: str = "",
    address: str = "",
    room: str = "",
    reason: str = "",
    minutes: int | None = None,
) -> Ban:
    """Save a ban after the model's validation (ValidationError by field, nothing saved).

    `minutes`: how long it lasts from now; None: until it is lifted.
    """
    if minutes is not None and minutes <= 0:
        raise ValidationError({"expires_at": "A ban lasts a positive number of minutes."})
    expires_at = None if minutes is None else timezone.now() + timedelta(minutes=minutes)
    ban = Ban(name=name, address=address, room=room, reason=reason, expires_at=expires_at)
    ban.full_clean()
    ban.save()
    return ban


def ban_lift(*, ban_id: int) -> bool:
    """Delete a ban; False if there is none with that id."""
    deleted, _ = Ban.objects.filter(id=ban_id).delete()
    return bool(deleted)


def kick_create(*, room: str, name: str, member: str = "") -> Kick:
    """Order every process to close the connection holding `name` in `room` with 4401.

    `member`: that connection's channel name, when the moderator picked it
    from the live members, so that nobody who takes the name meanwhile is hit.
    """
    kick = Kick(room=room, name=name.strip(), member=member)
    kick.full_clean()
    kick.save()
    return kick


def kick_wait(*, kick: Kick, timeout: float = KICK_WAIT_SECONDS) -> bool:
    """Wait until a process carried the kick out; whether one did (blocking: the command line)."""
    deadline = time.monotonic() + timeout
    while not Kick.objects.filter(id=kick.id, removed_at__isnull=False).exists():
        if time.monotonic() >= deadline:
            return False
        time.sleep(KICK_POLL_SECONDS)
    return True


def kick_withdraw(*, kick: Kick) -> None:
    """Delete a kick that found nobody, so that it cannot hit who takes the name later."""
    Kick.objects.filter(id=kick.id, removed_at=None).delete()


@database_sync_to_async
def kick_done(*, kick_id: int) -> None:
    """Record that the kick's connection was closed (the consumer that closed calls it).

    The connection is closed already: a database that cannot record it is
    logged, not raised into the consumer.
    """
    try:
        Kick.objects.filter(id=kick_id, removed_at=None).update(removed_at=timezone.now())
    except DatabaseError as error:
        logger.warning("kick %s was carried out but could not be recorded: %s", kick_id, error)


def members_are_shared() -> bool:
    """Whether every process's members are in one registry (Redis), readable from anywhere."""
    return "shared" in get_presence().extensions


async def live_members(*, room: str | None = None) -> list[LiveMember]:
    """The members of `room` (None: of every room) now, with their join time and address."""
    return await get_presence().live_members(room=room)


async def members_named(*, room: str, name: str) -> list[LiveMember]:
    """The members of `room` whose name matches `name` as names clash (one, or none)."""
    return [live for live in await live_members(room=room) if names_match(live.name, name)]
