"""The load generator: N members in one room, S of them sending.

One asyncio process (uvloop) that holds every member's socket. A phase sends
for a fixed time, either as fast as a small in-flight window allows (a
message is in flight until every other member has it, so no member can fall
more than the window behind, however the server orders its writes) or at a
fixed rate; then it waits for the room to drain and counts
what every member got: deliveries, latency (the send time is in the text),
losses, duplicates and reordering. It measures its own CPU time too, so a
saturated generator is never mistaken for a slow server.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass

from .designs import Design
from .wsclient import LeanClient

# Handshakes in flight at once while members connect: enough to keep the
# server busy, few enough not to overflow its accept backlog.
CONNECT_CONCURRENCY = 100
# After sending stops, how long the room may take to deliver what is in flight.
DRAIN_TIMEOUT_SECONDS = 10.0
CLOSE_TIMEOUT_SECONDS = 10.0


@dataclass(slots=True)
class Member:
    index: int
    name: str
    ws: LeanClient
    # Per sender: the highest sequence number seen, and the gaps below it.
    last: list[int]
    holes: set[tuple[int, int]]


@dataclass(slots=True)
class PhaseStats:
    senders: int
    mode: str
    seconds: float
    sent: int
    deliveries_in_window: int
    deliveries_per_second: float
    expected: int
    delivered: int
    lost: int
    duplicated: int
    reordered: int
    latency_ms: dict[str, float]
    client_cpu_share: float
    server_cpu_seconds: float
    server_cpu_us_per_delivery: float
    # The Redis server's CPU in the same window, for a server on Redis.
    redis_cpu_us_per_delivery: float | None = None


def percentiles(samples: array) -> dict[str, float]:
    """p50/p95/p99/max of nanosecond samples, in milliseconds."""
    if not samples:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "max": float("nan")}
    ordered = sorted(samples)
    last = len(ordered) - 1

    def at(fraction: float) -> float:
        return round(ordered[min(last, int(fraction * len(ordered)))] / 1e6, 3)

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": at(1.0)}


class Room:
    """Every member's connection, and the counters of the phase being run."""

    def __init__(
        self, design: Design, base_url: str, room: str, size: int, *, pad: int = 0
    ) -> None:
        if size < 2:
            raise ValueError("a room needs at least a sender and the observer")
        self.design = design
        self.base_url = base_url
        self.room = room
        self.size = size
        # Characters added to every text (after a fifth "|"): bigger messages.
        self.padding = "|" + "x" * pad if pad else ""
        self.members: list[Member] = []
        self._reset(phase=0, senders=0)

    def _reset(self, *, phase: int, senders: int) -> None:
        self.phase = phase
        self.sent = [0] * senders
        self.delivered = 0
        self.duplicated = 0
        self.reordered = 0
        self.latencies = array("q")
        self.windows: list[asyncio.Semaphore] = []
        # Per sender: sequence number -> members still to receive it.
        self.unheard: list[dict[int, int]] = [{} for _ in range(senders)]
        self.drained = asyncio.Event()
        self.expected = -1
        for member in self.members:
            member.last = [-1] * senders
            member.holes = set()

    # Joining.

    async def join_all(self, *, deadline: float) -> float:
        """Connect and join every member, the observer last; seconds taken."""
        started = time.monotonic()
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def join(index: int) -> Member:
            async with gate:
                return await self._join(index)

        async with asyncio.timeout_at(_loop_time(deadline)):
            self.members = list(await asyncio.gather(*(join(i) for i in range(self.size - 1))))
            self.members.append(await self._join(self.size - 1))
        for member in self.members:
            member.ws.listen(functools.partial(self._on_frame, member))
        return time.monotonic() - started

    async def _join(self, index: int) -> Member:
        name = f"m{index}"
        ws = await LeanClient.connect(self.design.url(self.base_url, self.room, name))
        join = self.design.join_frame(name)
        if join is not None:
            ws.send(join)
            while not self.design.is_joined(await ws.recv()):
                pass
        return Member(index=index, name=name, ws=ws, last=[], holes=set())

    # Receiving.

    def _on_frame(self, member: Member, frame: bytes) -> None:
        now = time.monotonic_ns()
        text = self.design.relayed_text(frame)
        if text is None:
            return
        phase, sender_text, seq_text, sent_at = text.split("|", 4)[:4]
        sender = int(sender_text)
        if int(phase) != self.phase or sender == member.index:
            return  # a late frame of an earlier phase, or the tutorial's echo
        seq = int(seq_text)
        last = member.last[sender]
        if seq == last + 1:
            member.last[sender] = seq
        elif seq > last + 1:
            member.holes.update((sender, missing) for missing in range(last + 1, seq))
            member.last[sender] = seq
        elif (sender, seq) in member.holes:
            member.holes.discard((sender, seq))
            self.reordered += 1
        else:
            self.duplicated += 1
            return
        self.delivered += 1
        self.latencies.append(now - int(sent_at))
        unheard = self.unheard[sender]
        left = unheard.pop(seq, 0) - 1
        if left > 0:
            unheard[seq] = left
        elif left == 0:
            self.windows[sender].release()
        if self.delivered == self.expected:
            self.drained.set()

    # Sending.

    async def run_phase(
        self,
        *,
        phase: int,
        senders: int,
        seconds: float,
        window: int,
        rate: float | None,
        server_cpu: Callable[[], float],
        redis_cpu: Callable[[], float] | None = None,
    ) -> PhaseStats:
        """Send for `seconds` (saturating, or `rate` messages/s in all), then drain."""
        if not 1 <= senders < self.size:
            raise ValueError("senders must be fewer than the members (the observer only listens)")
        self._reset(phase=phase, senders=senders)
        self.windows = [asyncio.Semaphore(window) for _ in range(senders)]
        loop = asyncio.get_running_loop()
        cpu_before, client_before = server_cpu(), time.process_time()
        redis_before = redis_cpu() if redis_cpu else 0.0
        started = loop.time()
        end = started + seconds
        await asyncio.gather(*(self._send(s, started, end, senders, rate) for s in range(senders)))
        window_seconds = loop.time() - started
        in_window = self.delivered
        cpu_spent = server_cpu() - cpu_before
        redis_spent = redis_cpu() - redis_before if redis_cpu else None
        client_share = (time.process_time() - client_before) / window_seconds
        expected = sum(self.sent) * (self.size - 1)
        self.expected = expected
        if self.delivered < expected:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.drained.wait(), DRAIN_TIMEOUT_SECONDS)
        lost = sum(len(member.holes) for member in self.members) + sum(
            self.sent[s] - 1 - member.last[s]
            for member in self.members
            for s in range(senders)
            if s != member.index
        )
        return PhaseStats(
            senders=senders,
            mode="saturate" if rate is None else f"rate {rate:g}/s",
            seconds=round(window_seconds, 3),
            sent=sum(self.sent),
            deliveries_in_window=in_window,
            deliveries_per_second=round(in_window / window_seconds, 1),
            expected=expected,
            delivered=self.delivered,
            lost=lost,
            duplicated=self.duplicated,
            reordered=self.reordered,
            latency_ms=percentiles(self.latencies),
            client_cpu_share=round(client_share, 3),
            server_cpu_seconds=round(cpu_spent, 3),
            server_cpu_us_per_delivery=round(cpu_spent * 1e6 / max(1, in_window), 2),
            redis_cpu_us_per_delivery=(
                None if redis_spent is None else round(redis_spent * 1e6 / max(1, in_window), 2)
            ),
        )

    async def _send(
        self, sender: int, started: float, end: float, senders: int, rate: float | None
    ) -> None:
        loop = asyncio.get_running_loop()
        ws = self.members[sender].ws
        window = self.windows[sender]
        interval = senders / rate if rate else 0.0
        # Fixed rate: the senders take turns, evenly spaced.
        next_at = started + interval * sender / senders
        seq = 0
        while True:
            if rate:
                if next_at >= end:
                    break
                await asyncio.sleep(max(0.0, next_at - loop.time()))
                next_at += interval
            else:
                remaining = end - loop.time()
                if remaining <= 0:
                    break
                # Only the wait for a window slot is cancelled, never a send.
                try:
                    await asyncio.wait_for(window.acquire(), remaining)
                except TimeoutError:
                    break
            self.unheard[sender][seq] = self.size - 1
            text = f"{self.phase}|{sender}|{seq}|{time.monotonic_ns()}{self.padding}"
            seq += 1
            self.sent[sender] = seq
            ws.send(self.design.message_frame(text))

    async def close(self) -> None:
        """Close every connection; wait (bounded) until the sockets are gone."""
        for member in self.members:
            member.ws.close()
        if self.members:
            await asyncio.wait(
                [member.ws.closed for member in self.members], timeout=CLOSE_TIMEOUT_SECONDS
            )
        self.members = []


def _loop_time(monotonic_deadline: float) -> float:
    """A time.monotonic() deadline on the running loop's clock."""
    return asyncio.get_running_loop().time() + (monotonic_deadline - time.monotonic())
