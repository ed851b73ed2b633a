"""Per-event-loop state and the one retry loop of the Redis backends' background tasks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, NoReturn, TypeVar

from .errors import REDIS_ERRORS, stop_if_cancelled

logger = logging.getLogger(__name__)

T = TypeVar("T")


class PerLoop(Generic[T]):
    """One `T` per event loop, made on first use in that loop.

    redis.asyncio connections belong to the loop that made them: a backend
    that outlives a loop (a test's, or `async_to_sync`'s in admin) makes its
    connections again in the next one rather than use dead ones.
    """

    __slots__ = ("_loop", "_make", "_value")

    def __init__(self, make: Callable[[asyncio.AbstractEventLoop], T]) -> None:
        self._make = make
        self._loop: asyncio.AbstractEventLoop | None = None
        self._value: T | None = None

    def get(self) -> T:
        """This loop's value, made now if it has none yet."""
        loop = asyncio.get_running_loop()
        if self._value is None or self._loop is not loop:
            self._loop, self._value = loop, self._make(loop)
        return self._value

    @property
    def current(self) -> T | None:
        """The value made last, if any, without making one."""
        return self._value

    def take(self) -> T | None:
        """Forget the value and return it, for its owner to close."""
        value, self._value, self._loop = self._value, None, None
        return value


class Backoff:
    """Delays that double from `first` to `most`: quick for a blip, calm during an outage."""

    __slots__ = ("_delay", "first", "most")

    def __init__(self, *, first: float, most: float) -> None:
        self.first = first
        self.most = most
        self._delay = first

    def next(self) -> float:
        delay = self._delay
        self._delay = min(delay * 2, self.most)
        return delay

    def reset(self) -> None:
        self._delay = self.first


async def keep_trying(
    step: Callable[[], Awaitable[object]],
    *,
    what: str,
    pause: Callable[[], float],
    on_failure: Callable[[BaseException], Awaitable[None]] | None = None,
) -> NoReturn:
    """Run `step` again and again, `pause()` seconds apart, until cancelled.

    A Redis outage is expected and logged as a warning (or handed to
    `on_failure`, which then says what it wants said); any other error is a
    bug, logged with its traceback. Neither stops the loop; `cancel()`
    always does, even when redis-py turned it into a connection error.
    """
    while True:
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except REDIS_ERRORS as error:
            stop_if_cancelled()
            if on_failure is None:
                logger.warning("%s: Redis unavailable: %s", what, error)
            else:
                await on_failure(error)
        except Exception as error:
            stop_if_cancelled()
            logger.exception("%s failed", what)
            if on_failure is not None:
                await on_failure(error)
        await asyncio.sleep(pause())


async def stop(task: asyncio.Task[object] | None) -> None:
    """Cancel a background task and wait until it has stopped."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
