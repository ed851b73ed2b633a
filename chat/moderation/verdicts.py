"""What moderation says of one connection, given the live settings: pure, no I/O."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .. import protocol
from ..conf import ChatConfig, RoomStatus
from ..sanctions import KickOrder, close_reason, find_ban

# The actions, as chat_moderation_total{action} counts them.
KICK = "kick"
BAN = "ban"
CLOSE_ROOM = "close_room"
NO_ROOM = "no_room"


@dataclass(frozen=True, slots=True)
class Verdict:
    """Close the connection with `code` (and `reason`), because of `action`."""

    action: str
    code: int
    reason: str = ""
    # The kick carried out, to be recorded as done.
    kick_id: int | None = None


def verdict(
    config: ChatConfig,
    *,
    room: str,
    name: str | None,
    address: str,
    member: str = "",
    kicks: Iterable[KickOrder] = (),
    now: float | None = None,
) -> Verdict | None:
    """Whether the connection of `member` in `room`, from `address`, must close, and how.

    `name` is None until the connection joins, so only an address ban, the
    room's state and nothing else reach it then. Asked at the handshake, at
    the join, and when a reload brought news (`tightened`, with its `kicks`).
    """
    status = config.room_status(room)
    if status is RoomStatus.MISSING:
        return Verdict(NO_ROOM, protocol.CLOSE_NO_SUCH_ROOM)
    if status is RoomStatus.CLOSED:
        return Verdict(CLOSE_ROOM, protocol.CLOSE_ROOM_CLOSED)
    ban = find_ban(
        config.bans, room=room, name=name, address=address, now=time.time() if now is None else now
    )
    if ban is not None:
        return Verdict(BAN, protocol.CLOSE_BANNED, close_reason(ban.reason))
    for kick in kicks:
        if kick.applies(room=room, name=name, member=member):
            return Verdict(KICK, protocol.CLOSE_KICKED, kick_id=kick.id)
    return None


def tightened(before: ChatConfig, after: ChatConfig) -> bool:
    """Whether `after` may close connections that `before` let stay: a new ban or a shut room.

    A lifted or expired ban, an opened room, slow mode or a room's size
    close nobody, so they need no word to every connection.
    """
    if set(after.bans) - set(before.bans):
        return True
    if before.allow_adhoc_rooms and not after.allow_adhoc_rooms:
        return True
    return any(
        before.room_status(slug) is RoomStatus.OPEN
        and after.room_status(slug) is not RoomStatus.OPEN
        for slug in before.rooms.keys() | after.rooms.keys()
    )


def new_kicks(config: ChatConfig, seen: Iterable[int]) -> Sequence[KickOrder]:
    """The pending kicks of `config` that are not among the ids `seen` in the snapshot before."""
    known = set(seen)
    return [kick for kick in config.kicks if kick.id not in known]


def slow_mode_wait(*, last: float, now: float, seconds: int) -> float:
    """Seconds a member must still wait in slow mode after its message at `last` (0: may send)."""
    if seconds <= 0:
        return 0.0
    return max(0.0, last + seconds - now)
