"""Rate limits for one connection: a token bucket and a sliding error window.

Pure and clock-injectable, so the tests step time by hand instead of sleeping.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

Clock = Callable[[], float]


class TokenBucket:
    """Allows `rate` events a second on average and up to `burst` at once.

    A rate of 0 turns the limit off. Rate and burst may change while the bucket
    is in use (an operator edits them in admin); the tokens already saved are
    kept, capped at the new burst.
    """

    # Every open connection holds one of each: slots, not a dict per instance.
    __slots__ = ("_clock", "_tokens", "_updated", "burst", "rate")

    def __init__(self, *, rate: float, burst: int, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._updated = clock()

    def configure(self, *, rate: float, burst: int) -> None:
        if rate == self.rate and burst == self.burst:
            return
        self._refill()
        self.rate = rate
        self.burst = burst
        self._tokens = min(self._tokens, float(burst))

    def allow(self) -> bool:
        """Take one token if there is one."""
        if self.rate <= 0:
            return True
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._updated = now
        if self.rate > 0:
            self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)


class EventWindow:
    """Counts events in the last `seconds`; `exceeded` once more than `limit` happened."""

    __slots__ = ("_clock", "_times", "limit", "seconds")

    def __init__(self, *, limit: int, seconds: float, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self.limit = limit
        self.seconds = seconds
        # Only the newest limit + 1 events can matter, so the memory is bounded.
        # Made at the first event: most connections never have one, and
        # each holds a deque for as long as it is open.
        self._times: deque[float] | None = None

    def record(self) -> bool:
        """Record one event; True when the window now holds more than `limit`."""
        now = self._clock()
        if self._times is None:
            self._times = deque(maxlen=self.limit + 1)
        self._times.append(now)
        while self._times and self._times[0] <= now - self.seconds:
            self._times.popleft()
        return len(self._times) > self.limit
