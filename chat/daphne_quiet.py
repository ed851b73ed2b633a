"""Let autobahn, under Daphne, work out its debug lines' arguments only for a line written.

autobahn logs a debug line for every frame it writes and every read, and
builds the line's arguments first, level or not: `hltype` and `hlval`
colour a function's name and a value with click's ANSI styles, about 5 µs
a frame (three calls each). txaio makes a debug call a no-op unless debug
is on, so the work is thrown away. In a room of 500 under Daphne, cProfile
counted 126,632 colourings for 26,390 frames sent: a sixth of the CPU of a
delivery, which Daphne, writing a room's frames only once its whole fan-out
has run, pays in every member's latency (docs/performance.md, "Daphne's
p99, profiled").

Its protocol also pretty-prints its options for a debug line per
connection (`pformat`), about a sixth of a connection's CPU under cProfile,
which a reconnect storm pays thousands of times at once.

Here these names, in the two autobahn modules that call them, build a
`Deferred` instead: the same text once formatted, so a debug line reads as
before, but made only when one is. Every call of theirs there is a log
argument but one, `Timings.__str__`, which returns the text and is wrapped
to (the guard in chat/tests/test_upstream_guards.py pins the modules'
sources). Under any other server this does nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from .daphne_patch import under_daphne, wrap_once

# autobahn's modules that colour log arguments, and the functions they use;
# the protocol also pretty-prints its options for a debug line per connection.
DEFERRED = {
    "autobahn.websocket.protocol": ("hltype", "hlval", "pformat"),
    "autobahn.twisted.websocket": ("hltype", "hlval"),
}


class Deferred:
    """A log argument: `make(*args, **kwargs)`, worked out when the line is formatted."""

    __slots__ = ("args", "kwargs", "make")

    def __init__(self, make: Callable[..., str], *args: Any, **kwargs: Any) -> None:
        self.make = make
        self.args = args
        self.kwargs = kwargs

    def __str__(self) -> str:
        return self.make(*self.args, **self.kwargs)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __repr__(self) -> str:
        return str(self)


def deferring(make: Callable[..., str]) -> Callable[..., Deferred]:
    """`make`, deferred: called with the same arguments, it returns a Deferred of them."""

    def defer(*args: Any, **kwargs: Any) -> Deferred:
        return Deferred(make, *args, **kwargs)

    defer.deferred = make  # type: ignore[attr-defined]
    return defer


def install() -> None:
    if not under_daphne():
        return
    for module_name, names in DEFERRED.items():
        module = importlib.import_module(module_name)
        for name in names:
            original = getattr(module, name)
            if not hasattr(original, "deferred"):
                setattr(module, name, deferring(original))
    # The one call that is not a log argument: Timings.__str__ returns it.
    from autobahn.websocket.protocol import Timings

    wrap_once(Timings, "__str__", _as_text)


def _as_text(original: Callable[[Any], object]) -> Callable[[Any], str]:
    def as_text(self: Any) -> str:
        return str(original(self))

    return as_text
