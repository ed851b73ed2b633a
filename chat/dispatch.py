"""A cheaper event loop for a consumer: the same semantics as Channels', fewer objects per event.

Channels' AsyncConsumer runs `await_many_dispatch`, which for every event
creates a task for the next receive and an `asyncio.wait` over both sources
(a future and callbacks on each task), and `dispatch`, which hops to a thread
(`aclose_old_connections`) before every handler. In a room every relayed
frame pays this once per member, and profiles of a 500-member room show it as
the largest cost after the transport's own. `LeanDispatchMixin` keeps the
contract (events of each source handled in order, one handler at a time, a
source read again only once its previous event was handled, StopConsumer ends
the consumer cleanly) with one long-lived task per source and a lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.layers import get_channel_layer

Event = dict[str, Any]
Source = Callable[[], Awaitable[Event]]
Dispatch = Callable[[Event], Awaitable[None]]


async def dispatch_from(sources: list[Source], dispatch: Dispatch) -> None:
    """Hand every event of every source to `dispatch`, one at a time, until one fails."""
    turn = asyncio.Lock()

    async def pump(source: Source) -> None:
        while True:
            event = await source()
            async with turn:
                await dispatch(event)

    failure = await _first_failure([asyncio.ensure_future(pump(source)) for source in sources])
    try:
        raise failure
    finally:
        # The traceback holds this frame and the frame would hold the
        # exception: a reference cycle that would keep the whole connection
        # (consumer, socket, buffers) in memory until a full collection.
        failure = None


async def _first_failure(pumps: list[asyncio.Task[None]]) -> BaseException:
    """Wait until a pump ends (only ever by raising), stop the others; what it raised.

    The exception is returned, not re-raised here, so no traceback holds this
    frame and, through it, the tasks that hold the exception.
    """
    try:
        done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
    failure = next(task for task in pumps if task in done).exception()
    if failure is None:
        raise RuntimeError("a dispatch pump returned")
    return failure


@functools.lru_cache(maxsize=256)
def _handler_name(event_type: str | None) -> str:
    """Channels' handler name for an event type, worked out once per type, not per event."""
    return get_handler_name({} if event_type is None else {"type": event_type})


def channel_receiver(layer: Any, channel: str) -> Source:
    """What reads `channel`'s events: the layer's own `receiver` if it has one.

    A layer may offer `receiver(channel)` to check the channel once rather
    than on every event (chat.layers_redis); any other layer is read through
    its `receive`, as Channels reads it.
    """
    receiver = getattr(layer, "receiver", None)
    if receiver is not None:
        return receiver(channel)
    return functools.partial(layer.receive, channel)


class LeanDispatchMixin:
    """Put first in a consumer's bases to run it on `dispatch_from`.

    Also skips `aclose_old_connections()` before each handler: it exists for
    handlers that use the ORM directly, and a consumer using this mixin must
    do its database work through `database_sync_to_async`, which closes
    stale connections itself.
    """

    channel_layer_alias: str

    async def __call__(self, scope, receive, send) -> None:
        """As AsyncConsumer.__call__, with `dispatch_from` as the event loop."""
        self.scope = scope
        # Before the layer is asked for a channel: if that fails (Redis is
        # down), the consumer can still accept and close with a reason.
        self.base_send = send
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        sources: list[Source] = [receive]
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
            self.channel_receive = channel_receiver(self.channel_layer, self.channel_name)
            sources.append(self.channel_receive)
        with contextlib.suppress(StopConsumer):
            await dispatch_from(sources, self.dispatch)

    async def dispatch(self, message: Event) -> None:
        """Route an event to the handler named after its type."""
        handler = getattr(self, _handler_name(message.get("type")), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)
