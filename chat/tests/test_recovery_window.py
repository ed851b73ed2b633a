"""The recovery window, pure: properties over any run of messages, times and limits."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chat.recovery.window import RoomWindow, Windows

# A run of messages: for each, how many ms after the previous one it came.
gaps = st.lists(st.integers(min_value=0, max_value=5_000), max_size=60)


def text(offset: int) -> str:
    return f'{{"type":"message","offset":{offset}}}'


def filled(run: list[int], *, keep: int, seconds: float) -> tuple[RoomWindow, list[int]]:
    """A window after `run`, and when each message came (ms)."""
    window = RoomWindow("e")
    now, times = 0, []
    for gap in run:
        now += gap
        offset, numbered = window.append(text, now_ms=now, keep=keep, seconds=seconds)
        assert (offset, numbered) == (len(times) + 1, text(len(times) + 1))
        times.append(now)
    return window, times


@given(
    run=gaps,
    keep=st.integers(min_value=0, max_value=20),
    seconds=st.integers(min_value=1, max_value=20),
    later=st.integers(min_value=0, max_value=30_000),
    after=st.integers(min_value=0, max_value=70),
)
def test_the_window_returns_exactly_the_offsets_it_holds(run, keep, seconds, later, after):
    window, times = filled(run, keep=keep, seconds=seconds)
    top = len(times)
    now = (times[-1] if times else 0) + later
    history = window.after(after, now_ms=now, keep=keep, seconds=seconds)
    assert (history.epoch, history.top) == ("e", top)
    # What the window may still hold: the last `keep`, none older than `seconds`.
    held = {
        offset
        for offset in range(max(1, top - keep + 1), top + 1)
        if times[offset - 1] >= now - seconds * 1000
    }
    wanted = set(range(after + 1, top + 1))
    if after > top or not wanted <= held:
        assert history.texts is None
    else:
        assert history.texts == tuple(text(offset) for offset in sorted(wanted))


@given(run=gaps, keep=st.integers(min_value=0, max_value=20))
def test_offsets_grow_by_exactly_one_whatever_the_window_keeps(run, keep):
    window, times = filled(run, keep=keep, seconds=1)
    assert window.top == len(times)
    assert len(window.entries) <= keep
    assert [entry[0] for entry in window.entries] == list(
        range(window.top - len(window.entries) + 1, window.top + 1)
    )


def test_a_room_nobody_is_in_whose_messages_aged_out_is_forgotten_with_its_epoch():
    windows = Windows()
    quiet = windows.get("chat.quiet", now_ms=0)
    quiet.append(text, now_ms=0, keep=10, seconds=1)
    busy = windows.get("chat.busy", now_ms=0)
    busy.append(text, now_ms=0, keep=10, seconds=1)
    assert windows.forget_idle(now_ms=5_000, seconds=1, in_use={"chat.busy"}.__contains__) == 1
    # A room with members keeps its offsets; the other starts a new run.
    assert windows.get("chat.busy", now_ms=5_000) is busy
    again = windows.get("chat.quiet", now_ms=5_000)
    assert again.epoch != quiet.epoch and again.top == 0
