"""The consumer's event loop: order per source, one handler at a time, clean stops."""

from __future__ import annotations

import asyncio

import pytest
from channels.exceptions import StopConsumer

from chat.dispatch import Turn, channel_receiver, dispatch_from


def source_of(events: list[dict]):
    queue: asyncio.Queue[dict] = asyncio.Queue()
    for event in events:
        queue.put_nowait(event)
    return queue.get


async def test_events_of_each_source_in_order_one_handler_at_a_time():
    handled: list[tuple[str, int]] = []
    running = 0

    async def dispatch(event: dict) -> None:
        nonlocal running
        running += 1
        assert running == 1, "two handlers ran at once"
        await asyncio.sleep(0)
        handled.append((event["source"], event["n"]))
        running -= 1
        if len(handled) == 6:
            raise StopConsumer

    a = source_of([{"source": "a", "n": n} for n in range(3)])
    b = source_of([{"source": "b", "n": n} for n in range(3)])
    with pytest.raises(StopConsumer):
        await asyncio.wait_for(dispatch_from([a, b], dispatch), 2)
    assert [n for source, n in handled if source == "a"] == [0, 1, 2]
    assert [n for source, n in handled if source == "b"] == [0, 1, 2]


async def test_a_failing_handler_stops_every_source():
    waiting = asyncio.Event()

    async def never() -> dict:
        waiting.set()
        await asyncio.Event().wait()
        return {}

    async def dispatch(event: dict) -> None:
        await waiting.wait()
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await asyncio.wait_for(dispatch_from([source_of([{"n": 1}]), never], dispatch), 2)


async def forever() -> dict:
    await asyncio.Event().wait()
    return {}


async def test_a_failure_in_another_source_stops_the_first_and_is_raised():
    """The first source is read in the caller's task: it is interrupted, not left hanging."""

    async def dispatch(event: dict) -> None:
        raise RuntimeError(f"boom {event['n']}")

    async def consumer() -> int:
        with pytest.raises(RuntimeError, match="boom 7"):
            await dispatch_from([forever, source_of([{"n": 7}])], dispatch)
        # The interruption was taken back: the task goes on as if never
        # cancelled (asyncio.timeout, for one, relies on that count).
        await asyncio.sleep(0)
        return asyncio.current_task().cancelling()

    assert await asyncio.wait_for(consumer(), 2) == 0


async def test_stop_consumer_from_another_source_ends_cleanly():
    async def dispatch(event: dict) -> None:
        raise StopConsumer

    with pytest.raises(StopConsumer):
        await asyncio.wait_for(dispatch_from([forever, source_of([{"n": 1}])], dispatch), 2)


async def test_a_cancellation_from_outside_stops_every_source():
    reading = asyncio.Event()

    async def watched() -> dict:
        reading.set()
        try:
            return await forever()
        finally:
            stopped.append("helper")

    stopped: list[str] = []

    async def dispatch(event: dict) -> None:
        raise AssertionError("no event was sent")

    task = asyncio.ensure_future(dispatch_from([forever, watched], dispatch))
    await asyncio.wait_for(reading.wait(), 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert stopped == ["helper"]


async def test_a_channel_is_read_through_the_layers_receiver_when_it_declares_one():
    class Layer:
        extensions = ["groups"]

        async def receive(self, channel: str) -> dict:
            return {"type": "via.receive", "channel": channel}

    class LayerWithReceiver(Layer):
        extensions = ["groups", "receiver"]

        def receiver(self, channel: str):
            async def receive_next() -> dict:
                return {"type": "via.receiver", "channel": channel}

            return receive_next

    assert await channel_receiver(Layer(), "c!1")() == {"type": "via.receive", "channel": "c!1"}
    assert await channel_receiver(LayerWithReceiver(), "c!2")() == {
        "type": "via.receiver",
        "channel": "c!2",
    }


async def test_a_turn_handed_to_a_waiter_cancelled_meanwhile_passes_on():
    turn = Turn()
    turn.busy = True
    first = asyncio.ensure_future(turn.wait())
    second = asyncio.ensure_future(turn.wait())
    await asyncio.sleep(0)
    turn.release()  # to the first waiter...
    first.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(second, 1)
    assert turn.busy, "the second waiter holds the turn"
    turn.release()
    assert not turn.busy
