"""How a room hears of a join or leave: in its next diff if the room is large, else now."""

from __future__ import annotations

import functools

from channels.layers import BaseChannelLayer

from .. import events, protocol
from ..rooms import group_name
from .base import Claim, Expired, Feed, Release


async def announce(
    *,
    feed: Feed,
    layer: BaseChannelLayer,
    room: str,
    event: str,
    name: str,
    outcome: Claim | Release | Expired,
    sender: str = "",
) -> None:
    """Tell the room's members of `name`'s join or leave (`event`), as the registry made it.

    `outcome` is what the registry answered: the room's count after the
    event, whether it noted the event in the room's shared diff already,
    and its serial. A large room's feed takes the event into its next
    diff, which goes to every member; otherwise a presence frame goes now
    to every member but `sender` (the member who joined hears `joined`
    instead), numbered with the serial, so that a member whose `joined`
    list came later, and has it already, drops it.
    """
    group = group_name(room)
    publish = functools.partial(events.publish, layer, group)
    count = outcome.count
    if not await feed.coalesce(
        room=room, event=event, name=name, count=count, publish=publish, noted=outcome.noted
    ):
        frame = protocol.presence_frame(event=event, name=name, count=count)
        presence = events.presence_event(frame, sender=sender, serial=outcome.serial)
        await layer.group_send(group, presence)
