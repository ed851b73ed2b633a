"""Who is in which room: the types, protocols and constants every presence backend shares.

The registry (`Presence`) is the name book behind `joined`, `presence` and
`name_taken`: names are unique per room, a name being taken when it clashes
with a member's by case or by look (chat.names: both backends index a room by
name key and by skeleton key), and a member is keyed by its channel name,
unique across processes, so releasing a name can never free somebody else's
claim on it. The feed (`Feed`) coalesces
the joins and leaves of large rooms into one diff frame per interval.

Backends import this module and never the loader (chat.presence): the
in-process one (chat.presence.memory) and the Redis one (chat.presence.redis).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Protocol

import orjson

from .. import protocol

# SPEC: coalescing is allowed for rooms with more than 100 members...
COALESCE_ABOVE_MEMBERS = 100
# ...at most one diff frame a second per room.
DIFF_INTERVAL_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Claim:
    """The outcome of claiming a name: the room's members after it, or None if taken or full.

    The members come as a JSON array, in join order, ready to go into the
    `joined` frame as they are: in a reconnect storm of N members the list
    is asked for N times, and chat.presence.redis keeps it encoded in Redis.
    """

    members_json: str | bytes | None
    count: int = 0
    # Whether the registry put the join in the room's next presence diff
    # already, in the claim itself (chat.presence.redis); never in-process.
    noted: bool = False
    # Refused because the room holds its `limit` of members already.
    full: bool = False
    # A take-over (`claim(takeover=...)`): the member that held the name,
    # which now belongs to the claimant; the room's count and list are unchanged.
    replaced: str | None = None
    # The registry's serial of this join (of a take-over: the latest serial,
    # since nobody joins): the list is the room as of it (see `Release.serial`).
    serial: int = 0

    @property
    def won(self) -> bool:
        return self.members_json is not None

    @property
    def members(self) -> list[str] | None:
        """The members decoded (tests, tools); the consumer sends `members_json` as it is."""
        return None if self.members_json is None else orjson.loads(self.members_json)


@dataclass(frozen=True, slots=True)
class Release:
    """A freed name: the room's count after, and whether the leave went into its next diff."""

    count: int
    noted: bool = False
    # The registry numbers every join and leave, in the order it made them,
    # with one counter for all rooms. A join or leave numbered at or below a
    # member's claim is in its `joined` list already: announced late (its
    # publish still on the way when the member joined), it is not told again.
    serial: int = 0


@dataclass(frozen=True, slots=True)
class LiveMember:
    """A member as the live members page shows it (not sent over the channel layer)."""

    room: str
    name: str
    member: str  # its connection's channel name
    joined_at: datetime  # in UTC
    address: str  # the client address of its connection ("" if the server gave none)


@dataclass(frozen=True, slots=True)
class Expired:
    """A member whose process stopped refreshing it: it has left `room`."""

    room: str
    name: str
    member: str
    count: int
    # Whether its leave went into the room's next diff (chat.presence.redis).
    noted: bool = False
    # The leave's serial (see `Release.serial`).
    serial: int = 0


# Sends one frame to every member of a room.
Publish = Callable[[dict[str, Any]], Awaitable[None]]
ExpiredHandler = Callable[[Sequence[Expired]], Awaitable[None]]
EvictedHandler = Callable[[Sequence[str]], Awaitable[None]]


class Feed(Protocol):
    async def coalesce(
        self, *, room: str, event: str, name: str, count: int, publish: Publish, noted: bool = False
    ) -> bool:
        """Take a join or leave into the room's next diff, or return False to send it now.

        `count` is the room's member count after the event; `publish`, which
        sends a frame to the whole room, sends the diff. `noted`: the
        registry has put the event in the room's shared diff already, with
        the claim or release (chat.presence.redis); never in-process.
        """


class Presence(Protocol):
    # What the backend can do beyond the protocol, as channel layers declare
    # theirs: "ping" (a health probe of the store it lives in), "shared"
    # (every process sees the same registry).
    extensions: ClassVar[list[str]]
    # The feed that coalesces this registry's large rooms.
    feed: Feed

    async def claim(
        self,
        *,
        room: str,
        name: str,
        member: str,
        address: str = "",
        limit: int = 0,
        takeover: str | None = None,
    ) -> Claim:
        """Claim `name` in `room` for `member` (a channel name), atomically.

        The entry keeps the join's time and the client `address` for the live
        members. With a `limit`, a room that holds that many members already
        refuses the claim (`full`); a taken name is refused first. With
        `takeover`, a member (from a verified resume token): if it holds
        exactly `name`, the entry becomes `member`'s, keeping its place and
        join time (`replaced`), and no limit applies (nobody is added).
        """

    async def release(self, *, room: str, name: str, member: str) -> Release | None:
        """Free the name if `member` holds it; None if it does not."""

    async def members(self, *, room: str) -> list[str]:
        """Names in the room, in the order they joined."""

    async def counts(self) -> dict[str, int]:
        """Members per room, for the rooms that have any."""

    async def live_members(self, *, room: str | None = None) -> list[LiveMember]:
        """Every member of `room` (None: of every room), by room and in join order."""

    async def ping(self) -> None:
        """Raise unless the registry's store answers (with "ping" in `extensions`)."""

    async def aclose(self) -> None:
        """Stop background work and close connections (tests, shutdown)."""


def diff_frame(events: dict[str, str], *, count: int) -> dict[str, Any]:
    """The diff of each name's latest event (name -> "join" or "leave", in event order).

    A diff holds each name's latest event only, so `joins` and `leaves` never
    share a name (the page applies joins, then leaves): a member who joined and
    left within one interval is a leave, which is a no-op for whoever never saw
    the join and removes the name for whoever saw it in a `joined` list.
    """
    joins = [name for name, event in events.items() if event == "join"]
    leaves = [name for name, event in events.items() if event == "leave"]
    return protocol.presence_diff_frame(joins=joins, leaves=leaves, count=count)
