"""The token bucket and the error window, with a clock stepped by hand."""

from chat.ratelimit import EventWindow, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_burst_then_rate():
    clock = Clock()
    bucket = TokenBucket(rate=5, burst=10, clock=clock)
    assert [bucket.allow() for _ in range(11)] == [True] * 10 + [False]
    clock.now += 0.2
    assert bucket.allow() is True
    assert bucket.allow() is False
    clock.now += 1.0
    assert sum(bucket.allow() for _ in range(10)) == 5


def test_bucket_never_saves_more_than_burst():
    clock = Clock()
    bucket = TokenBucket(rate=5, burst=3, clock=clock)
    clock.now += 3600
    assert sum(bucket.allow() for _ in range(10)) == 3


def test_bucket_rate_zero_is_unlimited():
    bucket = TokenBucket(rate=0, burst=1, clock=Clock())
    assert all(bucket.allow() for _ in range(1000))


def test_bucket_reconfigure_keeps_tokens_capped():
    clock = Clock()
    bucket = TokenBucket(rate=5, burst=10, clock=clock)
    bucket.configure(rate=1, burst=2)
    assert [bucket.allow() for _ in range(3)] == [True, True, False]
    clock.now += 1
    assert bucket.allow() is True
    bucket.configure(rate=0, burst=2)
    assert all(bucket.allow() for _ in range(50))


def test_window_exceeds_only_above_limit_within_seconds():
    clock = Clock()
    window = EventWindow(limit=3, seconds=10, clock=clock)
    assert [window.record() for _ in range(3)] == [False] * 3
    assert window.record() is True


def test_window_forgets_old_events():
    clock = Clock()
    window = EventWindow(limit=3, seconds=10, clock=clock)
    for _ in range(3):
        window.record()
        clock.now += 4
    # The first event is now 12 s old.
    assert window.record() is False
    assert window.record() is True
