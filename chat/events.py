"""The channel-layer event contract: what travels between a room's members and processes.

A leaf module: the consumer handles these events, the presence sweep and the
layers send them, and none of them needs to import another to agree on a name.
Events carry plain data only (no model instances, no datetimes), so every
layer can serialise them.
"""

from __future__ import annotations

from typing import Any

from channels.layers import BaseChannelLayer

from . import protocol

# An already encoded frame for every member of a group except its sender
# (`sender` is a channel name, or "" for nobody): encoded once, not per member.
BROADCAST = "chat.broadcast"
# A join or leave is a BROADCAST with "serial", the registry's number for it
# (chat.presence.base.Release): a member whose `joined` list is as of a later
# serial has it in the list already and drops it.
# A room's chat message is a BROADCAST too, sent with the layer's
# `group_send_numbered` ("history" extension): the layer adds `offset` to the
# event and to its frame (the Redis layer adds the run's `epoch` to the event
# too), and gives it to the sender as well, with "ack" ({client_id, id, ts},
# or None) for the sender alone to acknowledge.
# To a member whose name a rejoin with its resume token took over: close
# with 4409; it has left already, so it announces nothing.
REPLACED = "chat.replaced"
# To one member whose presence expired while it was still connected: close
# with 4503, so that the page rejoins.
EVICTED = "chat.evicted"
# To every connection of a process whose settings reload brought a new ban,
# a closed room or kicks (chat.moderation.watch): each checks whether it is
# reached. "kicks": the new kicks, as chat.sanctions.KickOrder.as_event().
MODERATE = "chat.moderate"
# To every connection of a process that is stopping (chat.drain): free the
# name at once, then close with 1012 so that the page reconnects elsewhere.
DRAIN = "chat.drain"
# Queued once, past the capacity, for a member whose channel was full and
# missed group events (chat.layers.memory): it closes with 4029.
OVERFLOW = "layer.overflow"
# To every channel of a process whose Redis layer lost Redis: what was
# published meanwhile never reached it (chat.layers.redis): close with 4503.
UNAVAILABLE = "layer.unavailable"


def room_event(frame: dict[str, Any], *, sender: str = "") -> dict[str, Any]:
    """The BROADCAST event carrying `frame` to a room's members, but `sender`."""
    return {"type": BROADCAST, "sender": sender, "text": protocol.encode(frame)}


def presence_event(frame: dict[str, Any], *, sender: str, serial: int) -> dict[str, Any]:
    """The BROADCAST event of a join or leave, numbered `serial` by the registry."""
    return {**room_event(frame, sender=sender), "serial": serial}


def message_event(
    frame: dict[str, Any], *, sender: str, ack: dict[str, Any] | None
) -> dict[str, Any]:
    """The BROADCAST event of a chat message, before the layer numbers it."""
    return {"type": BROADCAST, "sender": sender, "text": protocol.encode(frame), "ack": ack}


async def publish(
    layer: BaseChannelLayer, group: str, frame: dict[str, Any], *, sender: str = ""
) -> None:
    """Send a frame to every member of a room's group but `sender` (default: everyone)."""
    await layer.group_send(group, room_event(frame, sender=sender))
