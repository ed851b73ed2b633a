"""What the room hears when Redis presence upkeep finds members gone.

A member of a killed process never runs its own `leave()`; the process whose
sweep removed it announces the leave instead, with the same channel-layer
event the consumer uses, and takes the dead channel out of the room's group
so that later room traffic is not queued for it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from channels.layers import get_channel_layer

from . import protocol
from .consumers import EVICTED, publish_to_room
from .presence_feed import get_presence_feed
from .presence_redis import Expired
from .rooms import group_name


async def announce_expired(expired: Sequence[Expired]) -> None:
    """Tell each room that its members of a lost process have left.

    A process that died with thousands of members of one room leaves as
    many leaves to announce: a large room hears them in its diffs, as it
    hears a reconnect storm's joins.
    """
    layer = get_channel_layer()
    feed = get_presence_feed()
    for gone in expired:
        group = group_name(gone.room)
        await layer.group_discard(group, gone.member)
        publish = functools.partial(publish_to_room, layer, group)
        if not await feed.coalesce(
            room=gone.room,
            event="leave",
            name=gone.name,
            count=gone.count,
            publish=publish,
            noted=gone.noted,
        ):
            await publish(protocol.presence_frame(event="leave", name=gone.name, count=gone.count))


async def evict(members: Sequence[str]) -> None:
    """Disconnect this process's members whose presence expired while connected."""
    layer = get_channel_layer()
    for member in members:
        await layer.send(member, {"type": EVICTED})
