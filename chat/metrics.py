"""What one process counts for Prometheus, served at /metrics (SPEC "Metrics").

A leaf: the consumer, the layers and the views import it; it imports nothing
of the chat. Every process serves its own figures and Prometheus scrapes them
all (docs/deploy.md), so there is no multiprocess directory: processes may run
on different machines, and a figure belongs to the process that counted it.

No label names a room or a person: a label value is a time series, and rooms
and names are as many as people care to type. Labels take values from small
fixed sets (error codes, close codes, outcomes, actions).

Counting is cheap where it runs most. One chat message is one delivery per
member, so deliveries are not counted with prometheus_client's `inc()`, which
takes a lock (0.64 µs on the development machine, about 5 % of the 12 µs of
CPU a delivery costs at 500 members): each delivery adds 1 to a plain int
(0.04 µs), read when /metrics is scraped. Only the event loop's thread adds to
it, so no lock is needed; a scrape from Django's thread reads a whole int.
docs/performance.md has the figures.

Nothing is counted while `CHAT_METRICS_TOKEN` is unset: nobody could read it.
A connection decides once, when it starts, whether it counts (`counts()`),
so that it undoes exactly what it did even if the setting changes meanwhile.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator

from django.conf import settings
from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# Its own registry rather than the library's global one: exactly what this
# module defines, plus the standard process_* figures (CPU, memory, open files).
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)

CONNECTIONS = Gauge(
    "chat_connections",
    "WebSocket connections open in this process: accepted and not yet ended.",
    registry=REGISTRY,
)
MEMBERS = Gauge(
    "chat_members",
    "Members joined to a room through this process: connections whose first valid frame "
    "named them, until they leave.",
    registry=REGISTRY,
)
ROOMS = Gauge(
    "chat_rooms",
    "Rooms with at least one member in this process.",
    registry=REGISTRY,
)
MESSAGES = Counter(
    "chat_messages",
    "Chat messages accepted from this process's members and relayed to their room.",
    registry=REGISTRY,
)
ERRORS = Counter(
    "chat_errors",
    "Error frames sent to this process's connections, by error code.",
    ["code"],
    registry=REGISTRY,
)
CLOSES = Counter(
    "chat_closes",
    "WebSocket connections of this process that ended, by close code: the server's own, "
    "the client's, or for a connection lost without a close frame what the server reports "
    "(1006 under Daphne, 1005 under uvicorn). Client codes outside 1000-1015 are counted "
    "as other.",
    ["code"],
    registry=REGISTRY,
)
RECOVERIES = Counter(
    "chat_recoveries",
    "Rejoins with a resume token on this process, by whether the missed messages were recovered.",
    ["recovered"],
    registry=REGISTRY,
)
MODERATION = Counter(
    "chat_moderation",
    "Moderation actions this process applied to its own connections, by action.",
    ["action"],
    registry=REGISTRY,
)
for _outcome in ("true", "false"):
    # Both series exist from the start, so that a rate over them is never "no data".
    RECOVERIES.labels(recovered=_outcome)

# RFC 6455's registered close codes, which a client may send and we count as
# such; anything else a client sends (3000-4999 are free for applications)
# would let one client create thousands of series.
PEER_CLOSE_CODES = range(1000, 1016)
OTHER = "other"


class Counts:
    """What one connection counts for its process; `counts()` gives the one to use.

    `delivered` is the plain int of the relay path: add 1 for every frame
    written to the connection's socket.
    """

    __slots__ = ("_rooms", "delivered")

    def __init__(self) -> None:
        self.delivered = 0
        # room -> its members in this process, for chat_rooms.
        self._rooms: dict[str, int] = {}

    def opened(self) -> None:
        """A WebSocket was accepted."""
        CONNECTIONS.inc()

    def ended(self) -> None:
        """An accepted WebSocket's consumer is done."""
        CONNECTIONS.dec()

    def closed(self, code: int, *, by_server: bool) -> None:
        """The connection closed with `code`: the server's, or the client's (or the network's)."""
        label = str(code) if by_server or code in PEER_CLOSE_CODES else OTHER
        CLOSES.labels(code=label).inc()

    def joined(self, room: str) -> None:
        """A connection joined `room` (it is a member until `left`)."""
        MEMBERS.inc()
        members = self._rooms.get(room, 0)
        if not members:
            ROOMS.inc()
        self._rooms[room] = members + 1

    def left(self, room: str) -> None:
        """A member of `room` left it."""
        MEMBERS.dec()
        members = self._rooms.pop(room) - 1
        if members:
            self._rooms[room] = members
        else:
            ROOMS.dec()

    def message(self) -> None:
        """A member's chat message was accepted and relayed."""
        MESSAGES.inc()

    def error(self, code: str) -> None:
        """An error frame with `code` was sent."""
        ERRORS.labels(code=code).inc()

    def recovery(self, *, recovered: bool) -> None:
        """A rejoin with a resume token recovered its missed messages, or could not."""
        RECOVERIES.labels(recovered="true" if recovered else "false").inc()

    def moderation(self, action: str) -> None:
        """This process applied a moderation action (kick, ban, ...) to a connection."""
        MODERATION.labels(action=action).inc()


class Uncounted(Counts):
    """The same calls, counting nothing: metrics are off."""

    __slots__ = ()

    def opened(self) -> None:
        pass

    def ended(self) -> None:
        pass

    def closed(self, code: int, *, by_server: bool) -> None:
        pass

    def joined(self, room: str) -> None:
        pass

    def left(self, room: str) -> None:
        pass

    def message(self) -> None:
        pass

    def error(self, code: str) -> None:
        pass

    def recovery(self, *, recovered: bool) -> None:
        pass

    def moderation(self, action: str) -> None:
        pass


LIVE = Counts()
# Its `delivered` grows as LIVE's would, and nobody reads it.
OFF = Uncounted()


def enabled() -> bool:
    """Whether this process counts and serves metrics: `CHAT_METRICS_TOKEN` is set."""
    return bool(settings.CHAT_METRICS_TOKEN)


def counts() -> Counts:
    """What a connection starting now counts with: the process's counts, or nothing."""
    return LIVE if enabled() else OFF


class _Deliveries(Collector):
    """chat_deliveries_total, read from the plain int the relay path adds to."""

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "chat_deliveries",
            "Frames written to this process's WebSockets: room events relayed to its members "
            "and the server's answers (joined, ack, error, pong).",
            value=LIVE.delivered,
        )


class _RedisUp(Collector):
    """chat_redis_up, asked of whatever `watch_redis` was given; absent without Redis."""

    def __init__(self) -> None:
        self.probe: Callable[[], Callable[[], bool] | None] = lambda: None

    def collect(self) -> Iterator[Metric]:
        probe = self.probe()
        if probe is None:
            return
        yield GaugeMetricFamily(
            "chat_redis_up",
            "1 while this process's channel layer is connected to Redis, 0 while it is not.",
            value=1 if probe() else 0,
        )


REGISTRY.register(_Deliveries())
_REDIS_UP = _RedisUp()
REGISTRY.register(_REDIS_UP)


def watch_redis(probe: Callable[[], bool]) -> None:
    """Report chat_redis_up from `probe` (a bound method of the process's Redis layer).

    Held weakly: a layer that is gone (tests make many) reports nothing.
    """
    _REDIS_UP.probe = weakref.WeakMethod(probe)  # type: ignore[arg-type]
