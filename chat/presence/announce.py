"""How a room hears of a join or leave: in its next diff if the room is large, else now."""

from __future__ import annotations

import functools

from channels.layers import BaseChannelLayer

from .. import events, protocol
from ..rooms import group_name
from .base import Feed


async def announce(
    *,
    feed: Feed,
    layer: BaseChannelLayer,
    room: str,
    event: str,
    name: str,
    count: int,
    noted: bool,
    serial: int,
    sender: str = "",
) -> None:
    """Tell the room's members of `name`'s join or leave (`event`), `count` members after it.

    A large room's feed takes the event into its next diff, which goes to
    every member; otherwise a presence frame goes now to every member but
    `sender` (the member who joined hears `joined` instead), numbered with
    the registry's `serial` for it, so that a member whose `joined` list
    came later, and has it already, drops it. `noted`: the registry put
    the event in the room's shared diff already.
    """
    group = group_name(room)
    publish = functools.partial(events.publish, layer, group)
    if not await feed.coalesce(
        room=room, event=event, name=name, count=count, publish=publish, noted=noted
    ):
        frame = protocol.presence_frame(event=event, name=name, count=count)
        await layer.group_send(group, events.presence_event(frame, sender=sender, serial=serial))
