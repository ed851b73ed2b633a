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
    sender: str = "",
) -> None:
    """Tell the room's members of `name`'s join or leave (`event`), `count` members after it.

    A large room's feed takes the event into its next diff, which goes to
    every member; otherwise a presence frame goes now to every member but
    `sender` (the member who joined hears `joined` instead). `noted`: the
    registry put the event in the room's shared diff already.
    """
    group = group_name(room)
    publish = functools.partial(events.publish, layer, group)
    if not await feed.coalesce(
        room=room, event=event, name=name, count=count, publish=publish, noted=noted
    ):
        frame = protocol.presence_frame(event=event, name=name, count=count)
        await events.publish(layer, group, frame, sender=sender)
