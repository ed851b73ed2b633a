"""What the room hears when Redis presence upkeep finds members gone.

A member of a killed process never runs its own `leave()`; the process whose
sweep removed it announces the leave instead, as the member would have, and
takes the dead channel out of the room's group so that later room traffic is
not queued for it. A member of this process whose entry expired while it was
still connected (the process stalled past the TTL) is told to close, and its
page rejoins.
"""

from __future__ import annotations

from collections.abc import Sequence

from channels.layers import get_channel_layer

from .. import events
from ..rooms import group_name
from .announce import announce
from .base import Expired, Feed


async def announce_expired(expired: Sequence[Expired], *, feed: Feed) -> None:
    """Tell each room that its members of a lost process have left.

    A process that died with thousands of members of one room leaves as
    many leaves to announce: a large room hears them in its diffs, as it
    hears a reconnect storm's joins.
    """
    layer = get_channel_layer()
    for gone in expired:
        await layer.group_discard(group_name(gone.room), gone.member)
        await announce(
            feed=feed,
            layer=layer,
            room=gone.room,
            event="leave",
            name=gone.name,
            outcome=gone,
        )


async def evict(members: Sequence[str]) -> None:
    """Disconnect this process's members whose presence expired while connected."""
    layer = get_channel_layer()
    for member in members:
        await layer.send(member, {"type": events.EVICTED})
