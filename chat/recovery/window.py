"""A room's recovery window in memory: its latest offset and its last messages.

Pure: time comes in as an argument (milliseconds), so the window can be
tested, and property-tested, without a clock. The in-process channel layer
keeps one per room (`Windows`); the Redis layer keeps the same state in
Redis (chat/layers/lua/).
"""

from __future__ import annotations

import os
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class History:
    """What a window holds after an offset.

    `texts`: every message after the offset asked for, in order, as the JSON
    text the members received; None when some of them have left the window
    (or the offset is ahead of the room: nobody could have seen it).
    """

    epoch: str
    top: int
    texts: tuple[str, ...] | None = ()


class RoomWindow:
    """One room's run of offsets (`epoch`), its latest offset and its last messages."""

    __slots__ = ("entries", "epoch", "top")

    def __init__(self, epoch: str) -> None:
        self.epoch = epoch
        self.top = 0
        # (offset, when in ms, text), oldest first.
        self.entries: deque[tuple[int, int, str]] = deque()

    def append(
        self, text_for: Callable[[int], str], *, now_ms: int, keep: int, seconds: float
    ) -> tuple[int, str]:
        """Number the next message and keep it; its offset and text.

        `text_for(offset)` builds the message's text once its offset is known.
        With `keep` 0 (recovery off) messages are numbered and not kept.
        """
        self.top += 1
        text = text_for(self.top)
        if keep > 0:
            self.entries.append((self.top, now_ms, text))
        self.trim(now_ms=now_ms, keep=keep, seconds=seconds)
        return self.top, text

    def trim(self, *, now_ms: int, keep: int, seconds: float) -> None:
        """Drop what is past the window: beyond `keep` messages, or older than `seconds`."""
        entries = self.entries
        while len(entries) > keep:
            entries.popleft()
        oldest = now_ms - seconds * 1000
        while entries and entries[0][1] < oldest:
            entries.popleft()

    def after(self, offset: int, *, now_ms: int, keep: int, seconds: float) -> History:
        """Every message after `offset`, or None for them if the window lost some."""
        self.trim(now_ms=now_ms, keep=keep, seconds=seconds)
        if offset > self.top:
            return History(self.epoch, self.top, None)
        missing = self.top - offset
        if missing == 0:
            return History(self.epoch, self.top, ())
        entries = self.entries
        if len(entries) < missing:
            return History(self.epoch, self.top, None)
        start = len(entries) - missing
        return History(
            self.epoch, self.top, tuple(entries[i][2] for i in range(start, len(entries)))
        )

    def idle(self, *, now_ms: int, seconds: float) -> bool:
        """Whether nothing is kept any more: its messages all aged out."""
        self.trim(now_ms=now_ms, keep=len(self.entries), seconds=seconds)
        return not self.entries


class Windows:
    """The windows of one process's rooms, by group, and when each last changed.

    A room nobody is in any more and whose messages have aged out is
    forgotten, so memory is bounded by the rooms active within the window;
    a room that comes back starts a new epoch (its offsets start again at 1,
    and old resume tokens recover nothing, as SPEC says of a lost window).
    """

    def __init__(self) -> None:
        # Named after this process's run: a restarted process never reuses an epoch.
        self._run = os.urandom(6).hex()
        self._serial = 0
        self._windows: OrderedDict[str, tuple[RoomWindow, int]] = OrderedDict()

    def get(self, group: str, *, now_ms: int) -> RoomWindow:
        """The group's window, created on first use; marked as used now."""
        found = self._windows.pop(group, None)
        if found is None:
            self._serial += 1
            window = RoomWindow(f"{self._run}-{self._serial:x}")
        else:
            window = found[0]
        self._windows[group] = (window, now_ms)
        return window

    def forget_idle(self, *, now_ms: int, seconds: float, in_use: Callable[[str], bool]) -> int:
        """Forget windows unused for `seconds` whose group has no member; how many.

        `in_use(group)` tells whether a group has members. Windows are kept in
        order of last use, so this stops at the first one used recently.
        """
        forgotten = 0
        oldest = now_ms - seconds * 1000
        for group, (window, used) in list(self._windows.items()):
            if used >= oldest:
                break
            if in_use(group) or not window.idle(now_ms=now_ms, seconds=seconds):
                # Still wanted: counted as used now, so the scan stays short.
                self._windows.move_to_end(group)
                self._windows[group] = (window, now_ms)
                continue
            del self._windows[group]
            forgotten += 1
        return forgotten

    def __len__(self) -> int:
        return len(self._windows)
