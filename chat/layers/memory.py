"""The in-process channel layer used when REDIS_URL is unset (one server process).

Channels' stock InMemoryChannelLayer is fine for a tutorial and slow for a
room: every receive scans every channel and group for expired entries (so a
room's relay costs grow with the square of its size), every member gets a
deep copy of every event, and an event to a full channel is dropped without a
word. This layer keeps the same interface with different costs:

- `receive` is O(1): a deque per channel, and a future to wake one waiting
  receiver, handed the event directly when its queue is empty; a consumer
  on chat.dispatch reads through `receiver(channel)`, the same without a
  coroutine per event, and closes it when it is done with the channel;
- `group_send` is one loop over the members, with no task and no copy per
  member: events are shared, so handlers must treat them as read-only (ours
  do; they are plain data, as the house style requires);
- a full channel is never skipped in silence: the event is dropped for that
  member only, the drop is counted in `dropped`, a warning names the group
  and the channel once per overflow (not once per event, which would flood
  the log), and the member's queue gets one `layer.overflow` event past its
  capacity, so its consumer learns that it missed events and can say so;
- a consumer may also be told at the moment its channel overflows, through
  an alarm on its reader (`ChannelReader.on_overflow`): a consumer stuck in
  a send to a client that stopped reading would otherwise never reach the
  `layer.overflow` event. Such a channel's queue is emptied down to that
  event, since its consumer closes instead of sending what was queued;
- a consumer may also take a group event inside the send itself while its
  reader waits with nothing queued (`ChannelReader.relay_idle`): under
  chat.uvicorn_frames it hands the room's encoded frame to its socket
  there, with no wake-up and no ASGI send;
- nothing expires: members leave groups through `group_discard`, which the
  consumer always calls when it ends, a channel's queue is bounded by its
  capacity, and a closed reader takes its channel's queue with it.
  `expiry` and `group_expiry` are accepted, for settings that also suit
  channels-redis, and not used.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections import deque
from collections.abc import Callable
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import BaseChannelLayer

from .. import events
from ..ids import now_ms
from ..protocol import numbered_text
from ..recovery.window import History, Windows

logger = logging.getLogger(__name__)

# Random bytes naming this layer's process in its channel names: 16 hex
# digits, so that two of many processes never draw the same name.
PROCESS_ID_BYTES = 8


class ChatChannelLayer(BaseChannelLayer):
    """Channels and groups of one process, for one event loop at a time."""

    # "receiver": read a channel through `receiver(channel)` (chat.dispatch);
    # "history": number a group's messages and keep its recovery window
    # (`group_send_numbered`, `group_position`, `group_history`).
    extensions = ["groups", "flush", "receiver", "history"]

    def __init__(
        self,
        expiry: int = 60,
        group_expiry: int = 86400,
        capacity: int = 100,
        channel_capacity: dict | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(expiry=expiry, capacity=capacity, channel_capacity=channel_capacity)
        self.channel_capacity = self.compile_capacities(self.channel_capacity)
        self.group_expiry = group_expiry
        self.dropped = 0
        # Part of every channel name, so that a layer spanning processes
        # (chat.layers.redis) can tell which process a channel lives in.
        self.process_id = os.urandom(PROCESS_ID_BYTES).hex()
        self._counter = itertools.count(1)
        self._queues: dict[str, deque[dict[str, Any]]] = {}
        self._waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        # group -> its channels, in the order they joined (a dict as an ordered set).
        self._groups: dict[str, dict[str, None]] = {}
        self._overflowing: set[str] = set()
        # channel -> what to call when it overflows (ChannelReader.on_overflow).
        self._alarms: dict[str, Callable[[], None]] = {}
        # channel -> what takes its events while its reader waits idle (ChannelReader.relay_idle).
        self._relays: dict[str, Callable[[dict[str, Any]], bool]] = {}
        # group -> its recovery window (chat.recovery.window).
        self._windows = Windows()

    # Channels.

    async def new_channel(self, prefix: str = "specific.") -> str:
        return f"{prefix}{self.process_id}!{next(self._counter):x}"

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        """Queue an event for one channel; ChannelFull if it holds `capacity` already."""
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        if not self._deliver(channel, message):
            raise ChannelFull(channel)

    async def receive(self, channel: str) -> dict[str, Any]:
        """The channel's next event, waiting for one if need be."""
        message = self._next_queued(channel)
        if message is not None:
            return message
        if channel in self._waiters:
            raise RuntimeError(f"{channel} already has a receiver waiting")
        waiter = asyncio.get_running_loop().create_future()
        self._waiters[channel] = waiter
        try:
            return await waiter
        except asyncio.CancelledError:
            # Cancelled after an event was handed over: keep it for the next receive.
            if waiter.done() and not waiter.cancelled():
                self._queues.setdefault(channel, deque()).appendleft(waiter.result())
            raise
        finally:
            if self._waiters.get(channel) is waiter:
                del self._waiters[channel]

    def _next_queued(self, channel: str) -> dict[str, Any] | None:
        """The channel's oldest queued event, taken off its queue; None if it has none."""
        queue = self._queues.get(channel)
        if not queue:
            return None
        message = queue.popleft()
        if not queue:
            del self._queues[channel]
            self._overflowing.discard(channel)
        return message

    def receiver(self, channel: str) -> ChannelReader:
        """The reader of `channel` for its one consumer (chat.dispatch reads through it)."""
        return ChannelReader(self, channel)

    def _deliver(self, channel: str, message: dict[str, Any]) -> bool:
        """Hand the event to a waiting receiver or queue it; False if the channel is full.

        A receiver that waits with nothing queued, and has a relay, is
        offered the event first (ChannelReader.relay_idle): if the relay
        takes it, the receiver goes on waiting.
        """
        waiter = self._waiters.get(channel)
        if waiter is not None and not waiter.done():
            relay = self._relays.get(channel)
            if relay is not None and relay(message):
                return True
            del self._waiters[channel]
            waiter.set_result(message)
            return True
        if waiter is not None:
            del self._waiters[channel]
        queue = self._queues.get(channel)
        if queue is None:
            self._queues[channel] = deque((message,))
            return True
        if len(queue) >= self.get_capacity(channel):
            return False
        queue.append(message)
        return True

    # Groups.

    async def group_add(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        self._groups.setdefault(group, {})[channel] = None

    async def group_discard(self, group: str, channel: str) -> None:
        members = self._groups.get(group)
        if members is None:
            return
        members.pop(channel, None)
        if not members:
            del self._groups[group]

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """Give the event to every member; a full member misses it, and that is logged."""
        members = self._groups.get(group)
        if not members:
            return
        deliver = self._deliver
        full = [channel for channel in members if not deliver(channel, message)]
        if full:
            self._report_full(group, full, message)

    def _report_full(self, group: str, channels: list[str], message: dict[str, Any]) -> None:
        self.dropped += len(channels)
        newly_full = [channel for channel in channels if channel not in self._overflowing]
        self._overflowing.update(newly_full)
        for channel in newly_full:
            logger.warning(
                "channel %s of group %s is full (%d events): it misses %s events until it "
                "catches up",
                channel,
                group,
                self.get_capacity(channel),
                message.get("type"),
                extra={"channel": channel},
            )
            notice = {"type": events.OVERFLOW, "group": group}
            alarm = self._alarms.get(channel)
            if alarm is None:
                # One event past the capacity, once per overflow: the queue stays bounded.
                self._queues[channel].append(notice)
            else:
                # Its consumer closes now: what is queued would never be sent.
                self._queues[channel] = deque((notice,))
                alarm()

    # History: the recovery window (SPEC "Nothing lost across a short disconnect").

    async def group_send_numbered(
        self, group: str, message: dict[str, Any], *, keep: int, seconds: float
    ) -> None:
        """Number a message event, keep it in the group's window and give it to every member.

        The event's `text`, a message frame, gets `"offset"` added, and the
        event an `offset` field; its sender gets it too (the consumer acks
        its own message on it). Numbering and delivering happen in one step
        of the event loop, so every member sees the group's offsets in order.
        """
        now = now_ms()
        window = self._windows.get(group, now_ms=now)
        text = message["text"]
        offset, numbered = window.append(
            lambda n: numbered_text(text, n), now_ms=now, keep=keep, seconds=seconds
        )
        await self.group_send(group, {**message, "text": numbered, "offset": offset})
        self._windows.forget_idle(now_ms=now, seconds=seconds, in_use=self.has_group)

    async def group_position(self, group: str) -> History:
        """The group's epoch and latest offset (`texts` empty)."""
        window = self._windows.get(group, now_ms=now_ms())
        return History(window.epoch, window.top, ())

    async def group_history(self, group: str, *, after: int, keep: int, seconds: float) -> History:
        """The group's messages after offset `after`, or None for them if the window lost some."""
        now = now_ms()
        return self._windows.get(group, now_ms=now).after(
            after, now_ms=now, keep=keep, seconds=seconds
        )

    def has_group(self, group: str) -> bool:
        """Whether the group has a member in this layer."""
        return group in self._groups

    def groups(self) -> list[str]:
        """The groups with members in this layer."""
        return list(self._groups)

    def notify_all(self, message: dict[str, Any]) -> int:
        """Give `message` to every channel in use: waiting, holding events, or in a group.

        Past the capacity if need be: it is a notice that must not be lost
        (like the overflow event), sent once per incident. The channels reached.
        """
        channels = {*self._waiters, *self._queues}
        for members in self._groups.values():
            channels.update(members)
        for channel in channels:
            if not self._deliver(channel, message):
                self._queues[channel].append(message)
        return len(channels)

    # Maintenance.

    async def flush(self) -> None:
        """Forget every channel, group and queued event (tests)."""
        for waiter in self._waiters.values():
            waiter.cancel()
        self._queues.clear()
        self._waiters.clear()
        self._groups.clear()
        self._overflowing.clear()
        self._alarms.clear()
        self._relays.clear()
        self._windows = Windows()

    async def close(self) -> None:
        """Nothing to release: the layer holds no connections."""


class ChannelReader:
    """One consumer's reader of its channel: the next event, without a coroutine per event.

    Called, it returns the next event if one is queued, or else a future
    that the next event completes. In a room each member reads once per
    event, so `receive`'s coroutine (and its frame in every wake-up) is a
    cost per delivery; a profile of 500 members at a fixed rate put the
    layer's part at half of what the chat adds to the socket's own write.

    `close()` when the consumer is done with the channel (after it left
    its groups): the layer forgets the channel's queue and waiter. An event
    handed to the future of a reader cancelled in that instant goes with the
    consumer, which is ending.
    """

    __slots__ = ("_channel", "_layer", "_loop")

    def __init__(self, layer: ChatChannelLayer, channel: str) -> None:
        self._layer = layer
        self._channel = channel
        self._loop = asyncio.get_running_loop()

    def __call__(self) -> dict[str, Any] | asyncio.Future[dict[str, Any]]:
        layer, channel = self._layer, self._channel
        message = layer._next_queued(channel)
        if message is not None:
            return message
        waiter = layer._waiters.get(channel)
        if waiter is not None and not waiter.done():
            raise RuntimeError(f"{channel} already has a receiver waiting")
        waiter = layer._waiters[channel] = self._loop.create_future()
        return waiter

    def on_overflow(self, alarm: Callable[[], None]) -> None:
        """Call `alarm()` the moment the channel overflows, from inside the send that filled it.

        For a consumer that may be stuck sending to its client (uvicorn holds
        a send back while the client's socket buffers are full) and so would
        never read the `layer.overflow` event behind its full queue. The alarm
        must not block or raise; the queue is then emptied down to that event.
        """
        self._layer._alarms[self._channel] = alarm

    def relay_idle(self, relay: Callable[[dict[str, Any]], bool]) -> None:
        """Offer each event to `relay(event)` first while the reader waits with nothing queued.

        From inside the send that delivers it (a room's `group_send` calls
        it once per member): `relay` returns True if it dealt with the event
        there and then, and the reader goes on waiting; False, and the event
        is handed to the reader as usual. An event is offered only while the
        reader is idle, never with events queued before it, so the reader
        sees what is left in order. `relay` must not block or raise.
        """
        self._layer._relays[self._channel] = relay

    def close(self) -> None:
        """Forget the channel's queued events, waiting future, alarm and relay."""
        layer, channel = self._layer, self._channel
        layer._queues.pop(channel, None)
        layer._overflowing.discard(channel)
        layer._alarms.pop(channel, None)
        layer._relays.pop(channel, None)
        waiter = layer._waiters.pop(channel, None)
        if waiter is not None:
            waiter.cancel()
