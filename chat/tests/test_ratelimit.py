"""The token bucket and the error window, with a clock stepped by hand."""

from hypothesis import given
from hypothesis import strategies as st

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


# Properties. The bucket reads time only through its clock, so a drawn
# schedule of pauses and attempts drives it exactly. Rates and bursts span
# what ChatSettings accepts (0 < rate <= 1000, 1 <= burst <= 10,000).
rates = st.floats(min_value=0.01, max_value=1000, allow_nan=False)
bursts = st.integers(min_value=1, max_value=10_000)
# A pause (seconds; 0 is a burst of attempts at one instant) and how many
# attempts follow it.
steps = st.lists(
    st.tuples(st.floats(min_value=0, max_value=5, allow_nan=False), st.integers(0, 30)),
    max_size=40,
)
# The sums above are of floats; a bound met to within this is met.
FLOAT_SLACK = 1e-9


def within(allowed: int, bound: float) -> bool:
    return allowed <= bound + FLOAT_SLACK * (1 + bound)


@given(rates, bursts, steps)
def test_bucket_never_allows_more_than_burst_plus_rate_times_elapsed(rate, burst, schedule):
    clock = Clock()
    start = clock.now
    bucket = TokenBucket(rate=rate, burst=burst, clock=clock)
    allowed = 0
    for pause, attempts in schedule:
        clock.now += pause
        for _ in range(attempts):
            allowed += bucket.allow()
            assert within(allowed, burst + rate * (clock.now - start)), (allowed, clock.now)


@given(rates, bursts, st.lists(st.tuples(st.floats(0, 5), st.integers(0, 30), rates, bursts)))
def test_bucket_never_allows_more_than_it_earned_while_reconfigured(rate, burst, schedule):
    """An operator's edits keep the bound: the first burst plus what each rate earned."""
    clock = Clock()
    bucket = TokenBucket(rate=rate, burst=burst, clock=clock)
    allowed, earned = 0, float(burst)
    for pause, attempts, next_rate, next_burst in schedule:
        clock.now += pause
        earned += rate * pause
        for _ in range(attempts):
            allowed += bucket.allow()
        assert within(allowed, earned), (allowed, earned)
        bucket.configure(rate=next_rate, burst=next_burst)
        rate = next_rate


@given(rates, st.integers(1, 200), steps)
def test_a_bucket_left_alone_for_burst_over_rate_allows_a_whole_burst(rate, burst, schedule):
    """The other side: the limit gives back what it promised, whatever came before."""
    clock = Clock()
    bucket = TokenBucket(rate=rate, burst=burst, clock=clock)
    for pause, attempts in schedule:
        clock.now += pause
        for _ in range(attempts):
            bucket.allow()
    clock.now += burst / rate * (1 + FLOAT_SLACK) + FLOAT_SLACK
    assert [bucket.allow() for _ in range(burst + 1)] == [True] * burst + [False]


@given(st.integers(1, 60), st.floats(0.5, 20), steps)
def test_window_exceeds_exactly_when_more_than_limit_events_are_recent(limit, seconds, schedule):
    """Its bounded memory answers as a list of every event would."""
    clock = Clock()
    window = EventWindow(limit=limit, seconds=seconds, clock=clock)
    every: list[float] = []
    for pause, events in schedule:
        clock.now += pause
        for _ in range(events):
            every.append(clock.now)
            recent = [at for at in every if not at <= clock.now - seconds]
            assert window.record() is (len(recent) > limit)
