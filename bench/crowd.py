"""Members that behave as the page does, and check everything they are given.

A `Crowd` holds many members spread over rooms and server processes, in one
asyncio process on the lean client (bench.wsclient). Each `Member`:

- joins; sends a message now and then (with a `client_id`, so its own
  messages come back as acks with their offsets), only while joined;
- reconnects after a close as the page does: after a random delay of at
  most a second for 1012, else with exponential backoff and jitter (0.5 s
  doubling up to 15 s), the delay starting over only once it has rejoined;
  each attempt goes to the processes in turn and on to the next one when a
  connection is refused, as a load balancer would;
- rejoins with the latest `resume` token and the last offset it received,
  and takes `recovered: false` as "may have missed some": those are counted
  apart, as told, and it carries on from the new position;
- checks the offsets it receives, messages and acks together: each one
  exactly the last plus one, so a gap is a loss and a repeat a duplicate;
  and every message's content against the `Ledger`, the run's record of
  which sender's which message holds each offset of each room.

What a member counts is summed by `Crowd.totals()`; the latencies of live
messages (not replays) are collected for whoever reports them.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import math
import random
import time
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from websockets.exceptions import WebSocketException

from .wsclient import LeanClient

CONNECT_TIMEOUT_SECONDS = 10.0
# How long a join may take to be answered before the attempt counts as failed.
JOIN_TIMEOUT_SECONDS = 15.0
# The page's reconnect policy (templates/chat/index.html, chat/page.py).
BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MOST_SECONDS = 15.0
RESTART_SPREAD_SECONDS = 1.0
# Close codes after which the page reconnects "soon", or never by itself.
SOON = {1012}
BY_HAND = {4401, 4403, 4404, 4409, 4451}
# How often the traffic loop looks for members whose next message is due.
TICK_SECONDS = 0.05
# The handshakes in flight at once while a crowd joins.
JOIN_CONCURRENCY = 50


def room_path(room: str) -> str:
    return f"/websocket/ws_chat/{room}"


@dataclass(slots=True)
class Ledger:
    """Which sender's which message is at each offset of each room (and epoch)."""

    # (room, epoch) -> offset -> (name, seq)
    content: dict[tuple[str, str], dict[int, tuple[str, int]]] = field(
        default_factory=lambda: collections.defaultdict(dict)
    )
    # (room, epoch) -> (name, seq) -> offset
    where: dict[tuple[str, str], dict[tuple[str, int], int]] = field(
        default_factory=lambda: collections.defaultdict(dict)
    )
    tops: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    # An offset that two members saw holding different messages.
    mismatched: int = 0
    # One message at two offsets: relayed twice.
    relayed_twice: int = 0

    def note(self, room: str, epoch: str, offset: int, key: tuple[str, int]) -> None:
        run = (room, epoch)
        known = self.content[run].setdefault(offset, key)
        if known != key:
            self.mismatched += 1
        if self.where[run].setdefault(key, offset) != offset:
            self.relayed_twice += 1
        if offset > self.tops[run]:
            self.tops[run] = offset

    def top(self, room: str, epoch: str) -> int:
        """The room's latest offset in `epoch` that anybody has seen."""
        return self.tops[(room, epoch)]

    def holds(self, room: str, key: tuple[str, int]) -> bool:
        """Whether the room has this message at some offset, in any epoch."""
        return any(key in where for (r, _), where in self.where.items() if r == room)


@dataclass(slots=True)
class Counts:
    """What one member counted; `Crowd.totals()` sums them."""

    sent: int = 0
    acked: int = 0
    received: int = 0
    replayed: int = 0
    # An offset that never came while the member was in the room (a gap, or
    # the tail it lacks at the end): a loss.
    lost: int = 0
    # An offset received twice.
    doubled: int = 0
    # Messages missed while away that a `recovered: false` owned up to.
    missed_told: int = 0
    joins: int = 0
    # The churn's closes: dropped without a goodbye (back with resume), left cleanly.
    drops: int = 0
    leaves: int = 0
    recovered: int = 0
    not_recovered: int = 0
    # Sent, and the connection went before the ack came.
    unconfirmed: int = 0
    refused_attempts: int = 0
    # A reconnect the page would not make by itself (4401, 4409, ...).
    stopped: int = 0
    closes: collections.Counter[int] = field(default_factory=collections.Counter)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)

    def add(self, other: Counts) -> None:
        for name in self.__slots__:
            value = getattr(self, name)
            if isinstance(value, collections.Counter):
                value.update(getattr(other, name))
            else:
                setattr(self, name, value + getattr(other, name))

    def as_dict(self) -> dict[str, Any]:
        row = {name: getattr(self, name) for name in self.__slots__}
        row["closes"] = {str(code): n for code, n in sorted(self.closes.items())}
        row["errors"] = dict(sorted(self.errors.items()))
        return row


class Member:
    """One person in one room: a connection at a time, and everything it checks."""

    def __init__(self, crowd: Crowd, index: int, room: str) -> None:
        self.crowd = crowd
        self.index = index
        self.name = f"m{index}"
        self.room = room
        self.client: LeanClient | None = None
        self.state = "down"  # "connecting", "joining", "joined"
        self.epoch: str | None = None
        self.last = 0
        # Offsets up to this one are a replay (or from before the join): no latency.
        self.live_after = 0
        self.resume: str | None = None
        self.seq = 0
        # client_id -> seq of each message sent and not acknowledged yet.
        self.pending: dict[str, int] = {}
        self.attempts = 0
        self.turn = index
        self.next_say = 0.0
        # The churn's plan for this member's next close: None, "drop" or "leave".
        self.planned: str | None = None
        self.counts = Counts()
        # Times (monotonic) of the last disconnect, rejoin, and first ack after it.
        self.down_at: float | None = None
        self.rejoined_at: float | None = None
        self.talked_at: float | None = None
        self._retry: asyncio.TimerHandle | None = None

    # Connecting and joining.

    def connect_soon(self, delay: float) -> None:
        """Schedule the next connection attempt."""
        if self.crowd.stopping:
            return
        self._retry = asyncio.get_running_loop().call_later(delay, self._start)

    def _start(self) -> None:
        self._retry = None
        self.crowd.spawn(self.connect())

    async def connect(self) -> bool:
        """One attempt: the processes in turn, on to the next when one refuses. Joined?"""
        if self.crowd.stopping or self.state != "down":
            return False
        self.state = "connecting"
        urls = self.crowd.urls
        self.turn += 1
        for step in range(len(urls)):
            url = urls[(self.turn + step) % len(urls)] + room_path(self.room)
            try:
                client = await LeanClient.connect(url, within=CONNECT_TIMEOUT_SECONDS)
            except (OSError, TimeoutError, WebSocketException):
                self.counts.refused_attempts += 1
                continue
            break
        else:
            self.state = "down"
            self._closed_with(1006)
            return False
        if self.crowd.stopping:
            client.close()
            self.state = "down"
            return False
        self.client = client
        self.state = "joining"
        client.listen(functools.partial(self._on_frame, client))
        client.closed.add_done_callback(functools.partial(self._on_closed, client))
        join: dict[str, Any] = {"type": "join", "name": self.name}
        if self.resume is not None:
            join.update(resume=self.resume, offset=self.last)
        try:
            client.send(orjson.dumps(join).decode())
        except ConnectionError:
            return False  # closed as soon as it opened: `_on_closed` has its code
        loop = asyncio.get_running_loop()
        loop.call_later(JOIN_TIMEOUT_SECONDS, self._join_overdue, client)
        return True

    def _join_overdue(self, client: LeanClient) -> None:
        if client is self.client and self.state == "joining":
            self.counts.errors["join_timeout"] += 1
            client.abort()

    def _joined(self, frame: dict[str, Any]) -> None:
        recovered = frame.get("recovered")
        epoch, top = frame["epoch"], frame["offset"]
        counts = self.counts
        counts.joins += 1
        if recovered is True and epoch == self.epoch:
            counts.recovered += 1
            # The replay, offsets last+1..top, comes next: checked as any message.
        else:
            if recovered is not None:
                counts.not_recovered += 1
                if self.epoch is not None:
                    known = (
                        top if epoch == self.epoch else self.crowd.ledger.top(self.room, self.epoch)
                    )
                    counts.missed_told += max(0, known - self.last)
            self.epoch, self.last = epoch, top
        self.live_after = top
        self.resume = frame["resume"]
        self.state = "joined"
        self.attempts = 0
        now = time.monotonic()
        if self.down_at is not None:
            self.rejoined_at, self.talked_at = now, None
        self.next_say = now + self.crowd.interval * random.random()
        if self.down_at is not None and self.crowd.say_on_rejoin:
            self.say()

    # Talking.

    def say(self) -> None:
        """Send one message (`name|seq|monotonic ns`) with a client_id."""
        if self.state != "joined" or self.client is None or not self.client.is_open():
            return  # closing: `_on_closed` comes next
        self.seq += 1
        client_id = str(self.seq)
        text = f"{self.name}|{self.seq}|{time.monotonic_ns()}"
        self.pending[client_id] = self.seq
        self.counts.sent += 1
        self.client.send(orjson.dumps({"message": text, "client_id": client_id}).decode())

    # What arrives.

    def _on_frame(self, client: LeanClient, data: bytes) -> None:
        if client is not self.client:
            return  # a connection this member has given up
        frame = orjson.loads(data)
        kind = frame.get("type")
        if kind == "message":
            self._message(frame)
        elif kind == "ack":
            self._ack(frame)
        elif kind == "joined":
            self._joined(frame)
        elif kind == "error":
            self.counts.errors[frame["code"]] += 1
            if self.state == "joining":
                # A name still held, or anything else that keeps it out: retry later.
                client.abort()

    def _message(self, frame: dict[str, Any]) -> None:
        offset = frame["offset"]
        name, seq, sent_ns = frame["message"].split("|")
        if name != frame["name"]:
            self.crowd.ledger.mismatched += 1
        if not self._offset(offset, (name, int(seq))):
            return
        if offset > self.live_after:
            self.counts.received += 1
            self.crowd.latencies.append(time.monotonic_ns() - int(sent_ns))
        else:
            self.counts.replayed += 1

    def _ack(self, frame: dict[str, Any]) -> None:
        seq = self.pending.pop(frame["client_id"], None)
        if seq is None:
            self.counts.errors["unexpected_ack"] += 1
            return
        self.counts.acked += 1
        if self.rejoined_at is not None and self.talked_at is None:
            self.talked_at = time.monotonic()
        self._offset(frame["offset"], (self.name, seq))

    def _offset(self, offset: int, key: tuple[str, int]) -> bool:
        """Check one offset against the last; whether it is new."""
        assert self.epoch is not None
        self.crowd.ledger.note(self.room, self.epoch, offset, key)
        if offset <= self.last:
            self.counts.doubled += 1
            return False
        self.counts.lost += offset - self.last - 1
        self.last = offset
        return True

    # Closing.

    def _on_closed(self, client: LeanClient, _: asyncio.Future[None]) -> None:
        if client is not self.client:
            return
        if self.crowd.stopping:
            self.client, self.state = None, "down"
            return
        self.client = None
        self.state = "down"
        self.down_at = time.monotonic()
        self.counts.unconfirmed += len(self.pending)
        self.crowd.unconfirmed.extend(
            (self.room, (self.name, seq)) for seq in self.pending.values()
        )
        self.pending.clear()
        planned, self.planned = self.planned, None
        if planned is not None:
            self.crowd.comeback(self, planned)
            return
        self._closed_with(client.close_code or 1006)

    def _closed_with(self, code: int) -> None:
        """Reconnect as the page would after `code`."""
        self.counts.closes[code] += 1
        if code in BY_HAND:
            self.counts.stopped += 1
            return
        if code in SOON:
            self.connect_soon(random.random() * RESTART_SPREAD_SECONDS)
            return
        delay = min(BACKOFF_MOST_SECONDS, BACKOFF_FIRST_SECONDS * 2**self.attempts)
        self.attempts += 1
        self.connect_soon(delay / 2 + random.random() * delay / 2)

    def close(self, *, drop: bool = False) -> None:
        """Close the connection: cleanly, or dropped without a goodbye (`drop`)."""
        if self.client is not None:
            if drop:
                self.client.abort()
            else:
                self.client.close()

    def stop(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        self.close()


class Crowd:
    """Members over rooms and processes; their traffic, churn and totals."""

    def __init__(
        self,
        urls: list[str],
        *,
        members: int,
        rooms: int,
        interval: float,
        say_on_rejoin: bool = True,
    ) -> None:
        if members < 2 * rooms:
            raise ValueError("every room needs at least two members")
        self.urls = urls
        self.interval = interval
        self.say_on_rejoin = say_on_rejoin
        self.ledger = Ledger()
        self.latencies = array("q")
        self.unconfirmed: list[tuple[str, tuple[str, int]]] = []
        self.rooms = [f"soak{n}" for n in range(rooms)]
        self.members = [Member(self, i, self.rooms[i % rooms]) for i in range(members)]
        self.stopping = False
        self.sending = False
        # How long a churned member stays away, in seconds (low, high).
        self.away = (1.0, 3.0)
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coroutine) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # Joining.

    async def join_all(self, *, within: float) -> float:
        """Connect and join every member; seconds taken. TimeoutError if not all joined in time."""
        started = time.monotonic()
        gate = asyncio.Semaphore(JOIN_CONCURRENCY)

        async def join(member: Member) -> None:
            async with gate:
                await member.connect()

        async with asyncio.timeout(within):
            await asyncio.gather(*(join(member) for member in self.members))
        await self.wait_joined(within=max(1.0, within - (time.monotonic() - started)))
        return time.monotonic() - started

    def joined(self) -> list[Member]:
        return [member for member in self.members if member.state == "joined"]

    async def wait_joined(self, *, within: float) -> None:
        """Until every member is joined; TimeoutError if not within `within` s."""
        await self.until(lambda: len(self.joined()) == len(self.members), within)

    @staticmethod
    async def until(condition: Callable[[], bool], within: float) -> None:
        deadline = time.monotonic() + within
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"not within {within:g} s")
            await asyncio.sleep(0.05)

    # Traffic.

    async def traffic(self) -> None:
        """Each joined member says something about every `interval` s, until stopped."""
        self.sending = True
        while self.sending:
            now = time.monotonic()
            for member in self.members:
                if member.state == "joined" and member.next_say <= now:
                    member.say()
                    member.next_say = now + self.interval * random.uniform(0.5, 1.5)
            await asyncio.sleep(TICK_SECONDS)

    # Churn: some leave and come back all the time.

    async def churn(self, per_second: float, *, away: tuple[float, float]) -> None:
        """Every second, about `per_second` joined members drop or leave, back after `away` s.

        Half of them drop without a goodbye and come back with their resume
        token (a phone changing networks); the other half leave cleanly and
        come back as a new join (somebody closing the tab, later opening it).
        """
        self.away = away
        while not self.stopping:
            await asyncio.sleep(1.0)
            joined = self.joined()
            for member in random.sample(joined, min(len(joined), _poisson(per_second))):
                member.planned = random.choice(("drop", "leave"))
                member.close(drop=member.planned == "drop")

    def comeback(self, member: Member, planned: str) -> None:
        """A planned close happened: come back after a while (`churn`)."""
        if planned == "drop":
            member.counts.drops += 1
        else:
            member.counts.leaves += 1
            member.resume, member.epoch, member.last = None, None, 0
        member.connect_soon(random.uniform(*self.away))

    # The end.

    async def drain(self, *, within: float) -> bool:
        """Until every joined member has its room's latest offset; whether that happened."""

        def caught_up() -> bool:
            return all(
                member.last >= self.ledger.top(member.room, member.epoch)
                for member in self.joined()
            )

        try:
            await self.until(caught_up, within)
        except TimeoutError:
            return False
        return True

    def tails(self) -> int:
        """Offsets joined members still lack at the end: losses too."""
        return sum(
            max(0, self.ledger.top(member.room, member.epoch) - member.last)
            for member in self.joined()
        )

    def totals(self, members: Iterable[Member] | None = None) -> Counts:
        total = Counts()
        for member in self.members if members is None else members:
            total.add(member.counts)
        return total

    async def presence_check(self) -> dict[str, int]:
        """An observer joins each room: names it lists that no member holds, and the reverse."""
        ghosts = missing = 0
        for room in self.rooms:
            observer = await LeanClient.connect(
                self.urls[0] + room_path(room), within=CONNECT_TIMEOUT_SECONDS
            )
            try:
                name = f"observer-{room}"
                observer.send(orjson.dumps({"type": "join", "name": name}).decode())
                async with asyncio.timeout(JOIN_TIMEOUT_SECONDS):
                    while not (frame := orjson.loads(await observer.recv()))["type"] == "joined":
                        pass
            finally:
                observer.close()
            listed = set(frame["members"]) - {name}
            present = {m.name for m in self.members if m.room == room and m.state == "joined"}
            ghosts += len(listed - present)
            missing += len(present - listed)
        return {"ghosts": ghosts, "missing": missing}

    async def close(self) -> None:
        """Stop every member and every scheduled reconnect; wait (bounded) for the sockets."""
        self.stopping = True
        self.sending = False
        closing = [m.client.closed for m in self.members if m.client is not None]
        for member in self.members:
            member.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if closing:
            await asyncio.wait(closing, timeout=CONNECT_TIMEOUT_SECONDS)


def _poisson(mean: float) -> int:
    """A Poisson-distributed count with this mean (Knuth's method; small means only)."""
    limit, count, product = math.exp(-mean), 0, random.random()
    while product > limit:
        count += 1
        product *= random.random()
    return count
