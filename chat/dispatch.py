"""A cheaper event loop for a consumer: the same semantics as Channels', fewer objects per event.

Channels' AsyncConsumer runs `await_many_dispatch`, which for every event
creates a task for the next receive and an `asyncio.wait` over both sources
(a future and callbacks on each task), and `dispatch`, which hops to a thread
(`aclose_old_connections`) before every handler. In a room every relayed
frame pays this once per member, and profiles of a 500-member room show it as
the largest cost after the transport's own. `LeanDispatchMixin` keeps the
contract (events of each source handled in order, one handler at a time, a
source read again only once its previous event was handled, StopConsumer ends
the consumer cleanly) with a lock, the connection's own task reading the
first source, and one long-lived task for each other source.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.layers import get_channel_layer

Event = dict[str, Any]
# What reads a source: the next event, or an awaitable of it (a source that
# has an event at hand returns it without a coroutine: chat.layers.memory).
Source = Callable[[], Event | Awaitable[Event]]
Dispatch = Callable[[Event], Awaitable[None]]


class Turn:
    """One handler at a time: a lock whose uncontended acquire needs no coroutine.

    asyncio.Lock makes two coroutines per event (`__aenter__`, `__aexit__`),
    paid by every member for every event of its room; the two sources of a
    connection rarely contend.
    """

    __slots__ = ("busy", "waiting")

    def __init__(self) -> None:
        self.busy = False
        # Made at the first contention: an idle connection keeps no deque (0.6 KiB).
        self.waiting: deque[asyncio.Future[None]] | None = None

    async def wait(self) -> None:
        """Wait until the turn is free (call only when `busy`); first come, first served."""
        waiter = asyncio.get_running_loop().create_future()
        if self.waiting is None:
            self.waiting = deque()
        self.waiting.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed the turn as the cancellation came: pass it on
            raise

    def release(self) -> None:
        """Free the turn; the longest waiter takes it over without a gap."""
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.busy = False


async def dispatch_from(
    sources: list[Source], dispatch: Dispatch, turn: Turn | None = None
) -> None:
    """Hand every event of every source to `dispatch`, one at a time, until one fails.

    `turn` is busy while a handler runs: whoever holds it can tell whether
    the consumer is between events (LeanDispatchMixin.turn).

    The first source is read in the calling task and every other one in a
    task of its own: a connection costs one task beside the server's own,
    where a task per source and an `asyncio.wait` over them cost about a
    third more objects to create, track and collect, which a reconnect
    storm of thousands pays at once.
    """
    if turn is None:
        turn = Turn()

    async def pump(source: Source) -> None:
        while True:
            event = source()
            if not isinstance(event, dict):
                event = await event
            if turn.busy:
                await turn.wait()
            else:
                turn.busy = True
            try:
                await dispatch(event)
            finally:
                turn.release()

    first, *others = sources
    failure = await _first_failure(pump, first, others)
    try:
        raise failure
    finally:
        # The traceback holds this frame and the frame would hold the
        # exception: a reference cycle that would keep the whole connection
        # (consumer, socket, buffers) in memory until a full collection.
        failure = None


async def _first_failure(
    pump: Callable[[Source], Awaitable[None]], first: Source, others: list[Source]
) -> BaseException:
    """Pump `first` here and `others` in tasks until one ends (only by raising); what it raised.

    A helper task that fails cancels this task, which then returns the
    helper's exception instead of raising CancelledError; a cancellation
    from outside stays one. Either way the helpers are stopped before this
    returns. The exception is returned, not raised, so no traceback holds
    the frames that hold the tasks that hold the exception.
    """
    main = asyncio.current_task()
    assert main is not None
    failed: list[BaseException] = []
    pumping = True

    def helper_ended(task: asyncio.Task[None]) -> None:
        # Scheduled, not called, once the helper is done: by then this task
        # may have stopped pumping, and must not be cancelled any more.
        if pumping and not failed and not task.cancelled():
            failed.append(task.exception() or RuntimeError("a dispatch pump returned"))
            main.cancel()

    helpers = [asyncio.ensure_future(pump(source)) for source in others]
    for helper in helpers:
        helper.add_done_callback(helper_ended)
    try:
        await pump(first)
        return RuntimeError("a dispatch pump returned")
    except asyncio.CancelledError:
        if not failed:
            raise
        main.uncancel()
        return failed[0]
    except BaseException as error:
        # Not swallowed: handed to dispatch_from, which raises it.
        return error
    finally:
        pumping = False
        for helper in helpers:
            helper.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
        helpers.clear()
        failed.clear()


@functools.lru_cache(maxsize=256)
def _handler_name(event_type: str | None) -> str:
    """Channels' handler name for an event type, worked out once per type, not per event."""
    return get_handler_name({} if event_type is None else {"type": event_type})


def channel_receiver(layer: Any, channel: str) -> Source:
    """What reads `channel`'s events: the layer's own reader if it declares one.

    A layer with "receiver" in its `extensions` offers `receiver(channel)`,
    read without a coroutine per event and closed when the consumer is done
    (chat.layers.memory); any other layer is read through its `receive`, as
    Channels reads it.
    """
    if "receiver" in layer.extensions:
        return layer.receiver(channel)
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
        # Busy while a handler runs (`dispatch_from`).
        self.turn = Turn()
        sources: list[Source] = [receive]
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
            self.channel_receive = channel_receiver(self.channel_layer, self.channel_name)
            sources.append(self.channel_receive)
        try:
            with contextlib.suppress(StopConsumer):
                await dispatch_from(sources, self.dispatch, self.turn)
        finally:
            await self.dispatch_ended()

    async def dispatch_ended(self) -> None:
        """Nothing is read any more: the layer may forget the channel.

        A consumer still in a group must leave it first (override, then call
        this), or the group's next event would queue for nobody.
        """
        close = getattr(getattr(self, "channel_receive", None), "close", None)
        if close is not None:
            close()

    def dispatch(self, message: Event) -> Awaitable[None]:
        """Route an event to the handler named after its type: the handler's coroutine.

        Not a coroutine of its own, so that each event resumes one frame less.
        """
        handler = getattr(self, _handler_name(message.get("type")), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        return handler(message)
