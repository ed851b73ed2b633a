"""A background loop stops when cancelled, even if a library hides the cancellation."""

import asyncio

from chat.redis.errors import stop_if_cancelled


async def test_cancellation_turned_into_an_error_still_stops_the_loop():
    started = asyncio.Event()

    async def command() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise ConnectionError("connection lost") from None  # as redis-py may do

    async def retry_forever() -> None:
        while True:
            try:
                await command()
            except ConnectionError:
                stop_if_cancelled()
            await asyncio.sleep(0)

    task = asyncio.create_task(retry_forever())
    await started.wait()
    task.cancel()
    # asyncio.wait, not wait_for: wait_for would itself wait for a task that never ends.
    await asyncio.wait({task}, timeout=2)
    assert task.done(), "the loop swallowed its cancellation"
    assert task.cancelled()
