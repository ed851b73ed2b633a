"""The live fuzzer, `make fuzz`: generated and mutated frames against a real server process.

Method (docs/reliability.md): one server process started as the README
starts it, with its own database; two observers joined in one room; a few
fuzzing connections in that room writing cases of chat.testing.fuzzcases
(valid frames, frames with one field broken or characters changed, random
text and bytes, oversized and fragmented frames, broken frame headers,
frames after a close) one case at a time. After each case a ping: its pong
marks the end of the server's answers to that case, so every answer is
matched to the frame that earned it. A connection is replaced before it
has 50 errors (SPEC closes it with 4008 beyond that; one kind of case does
exactly that on a connection of its own), and the rate limit is raised to
its ceiling for the run, so that each valid message is accepted.

It asserts: `/healthz` answers 200 all along; every bad frame earns an SPEC
error code or a close code (1009 and 4008 of SPEC, 1002 and 1007 of the
WebSocket protocol itself); every valid one its ack (or nothing) and no
error; each observer receives every accepted message exactly once, in each
sender's order, and nothing else (no bad frame, no frame written after a
close); the server counts the errors the clients saw; no traceback in the
server's log but the server's own for invalid UTF-8; and the server's RSS
after the run is within 10 % of its RSS after the warm-up.

    python -m chat.testing.fuzz [--frames 10000] [--server uvicorn] [--seed 18] [--json PATH]

Exit status 1 if anything did not hold. Every process it starts it stops;
every loop is bounded by a count and a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import itertools
import json
import random
import re
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from . import servers, wsframes
from .fuzzcases import (
    ERROR_CODES,
    EVERY_KIND,
    MAX_RESUME_LENGTH,
    Case,
    Generator,
    Kind,
    accepted,
)

ROOM = "fuzz"
OBSERVERS = ("observer-a", "observer-b")
DEFAULT_FRAMES = 10_000
DEFAULT_WARMUP = 1_000
# Connections fuzzing at once: enough to interleave, few enough that a
# loaded 2-core machine answers each within ANSWER_TIMEOUT.
DEFAULT_WORKERS = 4
# How long the server gets to answer one case.
ANSWER_TIMEOUT = 10.0
# Bad frames a connection sends before the fuzzer replaces it: under SPEC's
# 50 in 10 s, which would close it with 4008 in the middle of a case.
ERROR_BUDGET = 40
# Share of new connections that come back with the last one's resume token;
# of the others, the share that join before fuzzing (the rest fuzz unjoined).
REJOIN = 0.3
JOIN_FIRST = 0.6
HEALTH_INTERVAL = 0.25
# Closed connections leave the server (its chat_connections gauge) within this.
SETTLE_TIMEOUT = 20.0
RSS_TOLERANCE = 0.10
# The settings of the run: the rate limit at its ceiling (ChatSettings'
# validators), so that no valid message is refused for its pace.
RUN_SETTINGS = {"rate_limit_per_second": 1000, "rate_limit_burst": 10_000}
# Tracebacks the server library writes itself for a client's bad frame,
# after answering it as it should (uvicorn, for a text frame that is not UTF-8).
EXPECTED_TRACEBACKS = ("Invalid UTF-8 sequence received from client",)


@dataclass(slots=True)
class Reply:
    """What the server answered to one case."""

    errors: list[dict[str, Any]] = field(default_factory=list)
    acks: list[dict[str, Any]] = field(default_factory=list)
    joined: dict[str, Any] | None = None
    # The room's messages that came meanwhile, as (offset, name, text): a replay first.
    messages: list[tuple[int, str, str]] = field(default_factory=list)
    pongs: int = 0
    closed: int | None = None
    timed_out: bool = False


@dataclass(slots=True)
class Tally:
    """Everything the run saw, for the checks and the report."""

    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    # Accepted chat messages as (sender, text), in the order each was acknowledged.
    relayed: list[tuple[str, str]] = field(default_factory=list)
    forbidden: set[str] = field(default_factory=set)
    # The offset each acknowledged message was given, and what recovered rejoins replayed.
    offsets: dict[tuple[str, str], int] = field(default_factory=dict)
    replayed: list[tuple[int, str, str]] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    frames: int = 0
    probes: int = 0
    connections: int = 0

    def violation(self, case: Case | None, text: str) -> None:
        where = f"{case.kind}: " if case is not None else ""
        self.violations.append(where + text)


def judge(case: Case, reply: Reply, *, name: str | None, tally: Tally) -> str | None:
    """Check one case's answers, count its outcome; the connection's name after it."""
    for error in reply.errors:
        tally.errors[error.get("code", "")] += 1
        if error.get("code") not in ERROR_CODES:
            tally.violation(case, f"error code {error.get('code')!r} is not SPEC's")
        if not isinstance(error.get("detail"), str) or not error["detail"]:
            tally.violation(case, f"error without a sentence: {error}")
        if case.client_id is not None and error.get("client_id") != case.client_id:
            tally.violation(case, f"error without the frame's client_id: {error}")
    if reply.joined is not None:
        name = reply.joined.get("name")
        check_joined(case, reply, tally)
    tally.forbidden.update(case.forbidden)
    if reply.timed_out:
        tally.violation(case, f"no answer within {ANSWER_TIMEOUT:g} s")
        tally.outcomes[(case.kind, "no answer")] += case.frames
        return name
    if reply.closed is not None and reply.closed not in case.closes:
        tally.violation(case, f"closed with {reply.closed}, expected one of {sorted(case.closes)}")
    if case.bad:
        judge_bad(case, reply, tally)
    else:
        judge_valid(case, reply, name, tally)
    return name


def check_joined(case: Case, reply: Reply, tally: Tally) -> None:
    """SPEC's `joined`: epoch, offset and a resume token; a rejoin's replay, exactly."""
    joined = reply.joined
    assert joined is not None
    resume, offset = joined.get("resume"), joined.get("offset")
    if not (isinstance(resume, str) and 0 < len(resume) <= MAX_RESUME_LENGTH):
        tally.violation(case, f"joined without a resume token: {joined}")
    if not isinstance(joined.get("epoch"), str) or not isinstance(offset, int) or offset < 0:
        tally.violation(case, f"joined without its epoch and offset: {joined}")
    asked = case.payload is not None and '"resume"' in case.payload
    if asked != ("recovered" in joined):
        tally.violation(case, f"recovered {'missing' if asked else 'unasked'}: {joined}")
    if joined.get("recovered") is True and case.replay_after is not None:
        wanted = list(range(case.replay_after + 1, offset + 1))
        replay = reply.messages[: len(wanted)]
        if [at for at, _, _ in replay] != wanted:
            tally.violation(case, f"replayed {[at for at, _, _ in replay]}, expected {wanted}")
        tally.replayed.extend(replay)


def judge_bad(case: Case, reply: Reply, tally: Tally) -> None:
    codes = [error.get("code", "") for error in reply.errors]
    if case.codes and len(codes) != case.errors:
        tally.violation(case, f"{len(codes)} error frames, expected {case.errors}")
    for code in codes:
        if code not in case.codes:
            tally.violation(case, f"error {code}, expected one of {sorted(case.codes)}")
        tally.outcomes[(case.kind, f"error {code}")] += 1
    if case.closes and reply.closed is None:
        tally.violation(case, f"left open, expected a close with one of {sorted(case.closes)}")
    if reply.acks or reply.joined:
        tally.violation(case, "a bad frame was acknowledged")
    rest = case.frames - len(codes) - len(case.forbidden)
    if reply.closed is not None:
        if rest > 0:
            tally.outcomes[(case.kind, f"close {reply.closed}")] += rest
        if case.forbidden:
            tally.outcomes[(case.kind, f"ignored after close {reply.closed}")] += len(
                case.forbidden
            )
    elif not codes:
        tally.outcomes[(case.kind, "no answer")] += case.frames


def judge_valid(case: Case, reply: Reply, name: str | None, tally: Tally) -> None:
    """A valid case, or a `maybe` one: success is right only for what chat.protocol accepts."""
    if reply.errors:
        if not case.maybe:
            tally.violation(case, f"a valid frame earned {reply.errors}")
        if len(reply.errors) > 1:
            tally.violation(case, f"one frame earned {len(reply.errors)} errors")
        tally.outcomes[(case.kind, f"error {reply.errors[0].get('code')}")] += case.frames
        return
    if reply.closed is not None:
        tally.outcomes[(case.kind, f"close {reply.closed}")] += case.frames
        return
    frame = accepted(case.payload) if case.payload is not None else None
    if case.maybe and frame is None:
        tally.violation(case, f"the server took what chat.protocol refuses: {case.payload!r:.200}")
    if case.joins and not case.maybe and reply.joined is None:
        tally.violation(case, "no joined frame")
    if case.client_id is not None and case.message is not None:
        if [ack.get("client_id") for ack in reply.acks] != [case.client_id]:
            tally.violation(case, f"acks {reply.acks}, expected one for {case.client_id!r}")
    elif reply.acks:
        tally.violation(case, f"acks for a frame that asked for none: {reply.acks}")
    if case.message is not None and name is not None:
        tally.relayed.append((name, case.message))
        for ack in reply.acks:
            tally.offsets[(name, case.message)] = ack.get("offset")
    if reply.joined is not None and "recovered" in reply.joined:
        outcome = "joined, recovered" if reply.joined["recovered"] else "joined, not recovered"
    elif reply.joined is not None:
        outcome = "joined"
    elif reply.acks:
        outcome = "accepted (ack)"
    elif reply.pongs:
        outcome = "pong"
    elif case.message is not None:
        outcome = "accepted (no ack asked)"
    else:
        outcome = "no answer asked"
    tally.outcomes[(case.kind, outcome)] += case.frames


class FuzzConnection:
    """One connection of the fuzzer: writes a case's bytes as they are, reads what answers it."""

    def __init__(self, ws: ClientConnection, tally: Tally) -> None:
        self.ws = ws
        self.tally = tally
        self.name: str | None = None
        self.errors = 0
        # The latest offset this connection was given (a message or an ack).
        self.seen = 0

    @classmethod
    async def open(cls, url: str, tally: Tally) -> FuzzConnection:
        tally.connections += 1
        ws = await connect(
            url,
            compression=None,
            ping_interval=None,
            max_size=None,
            open_timeout=ANSWER_TIMEOUT,
            close_timeout=2,
        )
        return cls(ws, tally)

    async def run(self, case: Case) -> Reply:
        reply = Reply()
        assert self.ws.transport is not None
        self.ws.transport.write(case.data)
        closes = bool(case.closes) and not case.maybe
        pongs_due = case.pings + 1
        if not closes:
            # The end of the answers: frames are handled in order.
            self.tally.probes += 1
            with contextlib.suppress(ConnectionClosed):
                await self.ws.send('{"type":"ping"}')
        deadline = time.monotonic() + ANSWER_TIMEOUT
        # Whether the answers are complete but for an ack: None until the pong.
        ack_due: bool | None = None
        while True:
            try:
                text = await asyncio.wait_for(self.ws.recv(), deadline - time.monotonic())
            except ConnectionClosed as closed:
                reply.closed = closed.rcvd.code if closed.rcvd else 1006
                break
            except TimeoutError:
                reply.timed_out = True
                break
            frame = json.loads(text)
            kind = frame.get("type")
            if kind == "pong":
                reply.pongs += 1
            elif kind == "error":
                reply.errors.append(frame)
            elif kind == "ack":
                reply.acks.append(frame)
                self.seen = max(self.seen, frame.get("offset") or 0)
                if ack_due and frame.get("client_id") == case.client_id:
                    break
            elif kind == "joined":
                reply.joined = frame
            elif kind == "message":
                reply.messages.append((frame["offset"], frame["name"], frame["message"]))
                self.seen = max(self.seen, frame["offset"])
            # Anything else is the room's traffic (presence, typing).
            if ack_due is None and not closes and reply.pongs == pongs_due:
                reply.pongs -= 1  # the probe's own
                # A message is acknowledged once the room has numbered it,
                # which may be after the pong: then wait for its ack too.
                ack_due = self.ack_due(case, reply)
                if not ack_due:
                    break
        self.errors += len(reply.errors)
        return reply

    @staticmethod
    def ack_due(case: Case, reply: Reply) -> bool:
        """Whether an ack must still come: an accepted message that asked for one."""
        wanted = case.client_id is not None and case.message is not None
        acked = any(ack.get("client_id") == case.client_id for ack in reply.acks)
        return wanted and not reply.errors and not acked

    @property
    def open_(self) -> bool:
        return self.ws.close_code is None

    async def close(self) -> None:
        with contextlib.suppress(ConnectionClosed, TimeoutError, OSError):
            await self.ws.close()


class Observer:
    """A member who only listens: every chat message it receives, in order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.messages: list[tuple[str, str]] = []
        self.ids: list[str] = []
        self.offsets: list[int] = []
        # The room's offset when it joined: it hears every message after it.
        self.joined_at = 0
        # The close code, if the server closed it before the run was over.
        self.closed: int | None = None
        self.stopping = False
        self.ws: ClientConnection | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self, url: str) -> None:
        self.ws = await connect(url, compression=None, max_size=None, open_timeout=ANSWER_TIMEOUT)
        await self.ws.send(json.dumps({"type": "join", "name": self.name}))
        joined = json.loads(await asyncio.wait_for(self.ws.recv(), ANSWER_TIMEOUT))
        if joined.get("type") != "joined":
            raise RuntimeError(f"{self.name} could not join: {joined}")
        self.joined_at = joined["offset"]
        self.task = asyncio.create_task(self.listen())

    async def listen(self) -> None:
        assert self.ws is not None
        try:
            async for text in self.ws:
                frame = json.loads(text)
                if frame.get("type") == "message":
                    self.messages.append((frame["name"], frame["message"]))
                    self.ids.append(frame["id"])
                    self.offsets.append(frame["offset"])
        except ConnectionClosed as closed:
            if not self.stopping:
                self.closed = closed.rcvd.code if closed.rcvd else 1006
        else:
            if not self.stopping:
                self.closed = self.ws.close_code

    def has(self, message: tuple[str, str]) -> bool:
        return message in self.messages

    async def stop(self) -> None:
        self.stopping = True
        if self.ws is not None:
            with contextlib.suppress(ConnectionClosed, TimeoutError, OSError):
                await self.ws.close()
        if self.task is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.task, ANSWER_TIMEOUT)


def check_observers(observers: Iterable[Observer], tally: Tally) -> None:
    """Each accepted message exactly once at each observer, in its sender's order; nothing else."""
    expected = Counter(tally.relayed)
    for observer in observers:
        got = Counter(observer.messages)
        if observer.closed is not None:
            tally.violation(None, f"{observer.name} was closed with {observer.closed}")
        missed = expected - got
        if missed:
            tally.violation(
                None, f"{observer.name} missed {sum(missed.values())}: {list(missed)[:3]}"
            )
        extra = got - expected
        doubled = [message for message in extra if message in expected]
        unknown = [message for message in extra if message not in expected]
        if doubled:
            tally.violation(None, f"{observer.name} received {len(doubled)} twice: {doubled[:3]}")
        if unknown:
            tally.violation(
                None, f"{observer.name} received {len(unknown)} never accepted: {unknown[:3]}"
            )
        leaked = [text for _, text in observer.messages if text in tally.forbidden]
        if leaked:
            tally.violation(
                None,
                f"{observer.name} received {len(leaked)} frames written after "
                f"a close: {leaked[:3]}",
            )
        if len(set(observer.ids)) != len(observer.ids):
            tally.violation(None, f"{observer.name} received one message id twice")
        check_offsets(observer, tally)
        for sender in {name for name, _ in tally.relayed}:
            sent = [text for name, text in tally.relayed if name == sender]
            heard = [text for name, text in observer.messages if name == sender]
            if heard != sent and not missed and not extra:
                tally.violation(None, f"{observer.name} heard {sender} out of order")


def check_offsets(observer: Observer, tally: Tally) -> None:
    """Every offset after its join, in order, none missing (SPEC); each message's as acked,
    and each replayed message the one the observer had at that offset."""
    start = observer.joined_at + 1
    if observer.offsets != list(range(start, start + len(observer.offsets))):
        gaps = [
            (before, after)
            for before, after in itertools.pairwise([observer.joined_at, *observer.offsets])
            if after != before + 1
        ]
        tally.violation(None, f"{observer.name}'s offsets jump: {gaps[:5]}")
    at = dict(zip(observer.messages, observer.offsets, strict=True))
    wrong = [
        (message, offset)
        for message, offset in tally.offsets.items()
        if at.get(message, offset) != offset
    ]
    if wrong:
        tally.violation(
            None, f"{observer.name} heard {len(wrong)} at another offset than acked: {wrong[:3]}"
        )
    by_offset = dict(zip(observer.offsets, observer.messages, strict=True))
    unlike = [
        (offset, name, text)
        for offset, name, text in tally.replayed
        if by_offset.get(offset, (name, text)) != (name, text)
    ]
    if unlike:
        tally.violation(
            None,
            f"{len(unlike)} replayed messages differ from what {observer.name} heard: {unlike[:3]}",
        )


async def worker(
    index: int, *, url: str, seed: int, quota: int, tour: list[Kind], tally: Tally, deadline: float
) -> None:
    """Fuzz from one connection after another until `quota` frames are written."""
    rng = random.Random(seed * 1009 + index)
    generator = Generator(rng=rng, prefix=f"fz{seed}w{index}", taken=OBSERVERS)
    tour = list(tour)
    connection: FuzzConnection | None = None
    written = 0
    try:
        while written < quota and time.monotonic() < deadline:
            if connection is None:
                connection = await FuzzConnection.open(url, tally)
                if generator.resume is not None and rng.random() < REJOIN:
                    written += await play(connection, generator.rejoin(), generator, tally)
                elif rng.random() < JOIN_FIRST:
                    written += await play(connection, generator.join(), generator, tally)
            case = generator.make(tour.pop(0), connection.name) if tour else None
            case = case or generator.next(connection.name)
            if case.fresh:
                await leave(connection, generator)
                connection = await FuzzConnection.open(url, tally)
                written += await play(connection, generator.join(), generator, tally)
                case = generator.make(case.kind, connection.name)
            written += await play(connection, case, generator, tally)
            if not connection.open_ or connection.errors >= ERROR_BUDGET:
                await leave(connection, generator)
                connection = None
    finally:
        if connection is not None:
            await leave(connection, generator)
        tally.frames += written


async def leave(connection: FuzzConnection, generator: Generator) -> None:
    """Close a connection; its writer keeps the latest offset it was given, for a rejoin."""
    await connection.close()
    generator.seen = max(generator.seen, connection.seen)


async def play(connection: FuzzConnection, case: Case, generator: Generator, tally: Tally) -> int:
    """Write one case and judge its answers; the frames it counts."""
    reply = await connection.run(case)
    connection.name = judge(case, reply, name=connection.name, tally=tally)
    if reply.joined is not None and "resume" in reply.joined:
        generator.joined(reply.joined)
    if reply.timed_out:
        await connection.close()
    return case.frames


async def phase(
    url: str,
    *,
    seed: int,
    frames: int,
    workers: int,
    tour: list[Kind],
    tally: Tally,
    deadline: float,
) -> None:
    quota = -(-frames // workers)
    await asyncio.gather(
        *(
            worker(
                index, url=url, seed=seed, quota=quota, tour=tour, tally=tally, deadline=deadline
            )
            for index in range(workers)
        )
    )


@dataclass(slots=True)
class Health:
    """GET /healthz every HEALTH_INTERVAL while the run lasts."""

    server: servers.ServerProcess
    answered: int = 0
    failures: list[str] = field(default_factory=list)

    async def watch(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            status, body = await asyncio.to_thread(self.server.healthz)
            if status == 200:
                self.answered += 1
            else:
                self.failures.append(f"{status} {body[:200]}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), HEALTH_INTERVAL)


async def settle(server: servers.ServerProcess, token: str) -> None:
    """Wait until only the observers are connected: every fuzzing connection has left."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while time.monotonic() < deadline:
        figures = await asyncio.to_thread(server.scrape, token)
        if figures.get("chat_connections") == len(OBSERVERS):
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"fuzzing connections still open after {SETTLE_TIMEOUT:g} s")


def rss_kib(pid: int) -> int:
    """VmRSS of a process, from /proc/<pid>/status."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert match, status
    return int(match.group(1))


def server_errors(figures: dict[str, float]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for series, value in figures.items():
        match = re.fullmatch(r"chat_errors_total\{code=([^}]+)\}", series)
        if match and value:
            counts[match.group(1)] = int(value)
    return counts


def unexpected_tracebacks(log: str) -> list[str]:
    """Tracebacks in a server log, but those its library writes for invalid UTF-8."""
    entries = re.split(r"\n(?=\d{4}-\d\d-\d\d |\S+ - - \[)", log)
    return [
        entry[:600]
        for entry in entries
        if "Traceback" in entry and not any(known in entry for known in EXPECTED_TRACEBACKS)
    ]


@dataclass(slots=True)
class Summary:
    server: str
    seed: int
    frames: int
    warmup_frames: int
    probes: int
    connections: int
    outcomes: list[tuple[str, str, int]]
    relayed: int
    replayed: int
    observer_messages: dict[str, int]
    health_answered: int
    health_failures: list[str]
    rss_warm_kib: int
    rss_after_kib: int
    errors_seen: dict[str, int]
    errors_counted: dict[str, int]
    seconds: float
    violations: list[str]

    @property
    def rss_growth(self) -> float:
        return self.rss_after_kib / self.rss_warm_kib - 1

    def table(self) -> str:
        rows = ["| case | outcome | frames |", "|---|---|---:|"]
        rows += [f"| {kind} | {outcome} | {count:,} |" for kind, outcome, count in self.outcomes]
        total = sum(count for _, _, count in self.outcomes)
        rows.append(f"| **all** | | **{total:,}** |")
        return "\n".join(rows)

    def report(self) -> str:
        lines = [
            f"Fuzzed {self.server} with seed {self.seed}: {self.frames:,} frames after a "
            f"warm-up of {self.warmup_frames:,}, over {self.connections:,} connections, "
            f"with {self.probes:,} pings marking the end of each case's answers, "
            f"in {self.seconds:.0f} s.",
            "",
            "Outcomes of every frame, warm-up included:",
            "",
            self.table(),
            "",
            f"/healthz: {self.health_answered:,} answers 200, {len(self.health_failures)} not.",
            f"Observers: {self.relayed:,} messages accepted; received "
            + ", ".join(f"{name} {count:,}" for name, count in self.observer_messages.items())
            + ".",
            f"Recovered rejoins replayed {self.replayed:,} messages, each the one the observers "
            "heard at its offset.",
            f"Errors: {sum(self.errors_seen.values()):,} seen by the clients, "
            f"{sum(self.errors_counted.values()):,} counted by the server (chat_errors_total).",
            f"RSS: {self.rss_warm_kib / 1024:.1f} MiB after the warm-up, "
            f"{self.rss_after_kib / 1024:.1f} MiB after the run ({self.rss_growth:+.1%}).",
            f"Violations: {len(self.violations)}",
            *(f"  - {violation}" for violation in self.violations[:30]),
        ]
        return "\n".join(lines)


async def fuzz(
    *, kind: str, frames: int, warmup: int, workers: int, seed: int, max_seconds: float, work: Path
) -> Summary:
    database = work / "chat.sqlite3"
    servers.migrate(servers.server_env(database))
    servers.chat_settings(database, **RUN_SETTINGS)
    token = secrets.token_urlsafe(16)
    server = servers.server_process(
        kind,
        database,
        work,
        CHAT_METRICS_TOKEN=token,
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_SSL_REDIRECT="0",
    )
    started = time.monotonic()
    deadline = started + max_seconds
    tally = Tally()
    observers = [Observer(name) for name in OBSERVERS]
    with server:
        url = f"{server.ws_url}/websocket/ws_chat/{ROOM}"
        health = Health(server)
        stop = asyncio.Event()
        watching = asyncio.create_task(health.watch(stop))
        try:
            for observer in observers:
                await observer.start(url)
            # The warm-up meets every kind of case twice on each connection
            # first, so the run after it reaches no code path for the first time.
            tour = EVERY_KIND * 2
            await phase(
                url,
                seed=seed,
                frames=warmup,
                workers=workers,
                tour=tour,
                tally=tally,
                deadline=deadline,
            )
            warm_frames = tally.frames
            await settle(server, token)
            rss_warm = rss_kib(server.process.pid)
            await phase(
                url,
                seed=seed + 1,
                frames=frames,
                workers=workers,
                tour=[],
                tally=tally,
                deadline=deadline,
            )
            await settle(server, token)
            rss_after = rss_kib(server.process.pid)
            await last_word(url, observers, tally)
            figures = await asyncio.to_thread(server.scrape, token)
        finally:
            stop.set()
            await watching
            for observer in observers:
                await observer.stop()
        alive = server.process.poll() is None
    check_observers(observers, tally)
    if not alive:
        tally.violation(None, "the server process exited during the run")
    for failure in health.failures:
        tally.violation(None, f"/healthz answered {failure}")
    counted = server_errors(figures)
    if counted != tally.errors:
        tally.violation(
            None, f"the server counted errors {dict(counted)}, the clients saw {dict(tally.errors)}"
        )
    for entry in unexpected_tracebacks(server.log()):
        tally.violation(None, f"traceback in the server's log:\n{entry}")
    if rss_after > rss_warm * (1 + RSS_TOLERANCE):
        tally.violation(None, f"RSS grew from {rss_warm} KiB to {rss_after} KiB")
    run_frames = tally.frames - warm_frames
    if run_frames < frames:
        tally.violation(None, f"only {run_frames} frames written before the deadline")
    return Summary(
        server=kind,
        seed=seed,
        frames=run_frames,
        warmup_frames=warm_frames,
        probes=tally.probes,
        connections=tally.connections,
        outcomes=sorted(
            ((case, outcome, count) for (case, outcome), count in tally.outcomes.items()),
            key=lambda row: (list(Kind).index(Kind(row[0])), -row[2]),
        ),
        relayed=len(tally.relayed),
        replayed=len(tally.replayed),
        observer_messages={observer.name: len(observer.messages) for observer in observers},
        health_answered=health.answered,
        health_failures=health.failures,
        rss_warm_kib=rss_warm,
        rss_after_kib=rss_after,
        errors_seen=dict(tally.errors),
        errors_counted=dict(counted),
        seconds=time.monotonic() - started,
        violations=tally.violations,
    )


async def last_word(url: str, observers: list[Observer], tally: Tally) -> None:
    """A last message, sent once every other was acknowledged: when both observers
    have it, they have everything relayed before it (each reads its room in order)."""
    text = f"last word {secrets.token_hex(4)}"
    frame = json.dumps({"name": "last-word", "message": text, "client_id": "last"})
    connection = await FuzzConnection.open(url, tally)
    try:
        case = Case(Kind.MESSAGE, wsframes.text(frame), client_id="last", message=text)
        reply = await connection.run(case)
        if reply.joined is None or [ack.get("client_id") for ack in reply.acks] != ["last"]:
            tally.violation(None, f"the last word was not accepted: {reply}")
            return
        tally.relayed.append(("last-word", text))
    finally:
        await connection.close()
    deadline = time.monotonic() + ANSWER_TIMEOUT
    while time.monotonic() < deadline:
        if all(observer.has(("last-word", text)) for observer in observers):
            return
        await asyncio.sleep(0.05)
    tally.violation(None, f"the observers did not hear the last word within {ANSWER_TIMEOUT:g} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m chat.testing.fuzz",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--frames",
        type=int,
        default=DEFAULT_FRAMES,
        help="frames to write after the warm-up (default %(default)s)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=DEFAULT_WARMUP,
        help="frames to write before RSS is first read (default %(default)s)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=DEFAULT_WORKERS,
        help="connections fuzzing at once (default %(default)s)",
    )
    parser.add_argument(
        "--server",
        choices=["uvicorn", "daphne", "runserver"],
        default="uvicorn",
        help="how the server is started, as the README says (default %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=18, help="default %(default)s")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=900,
        help="give up (and fail) after this long (default %(default)s)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    parser.add_argument("--keep", type=Path, help="keep the database and server log here")
    args = parser.parse_args(argv)
    if args.frames < 1 or args.warmup < 0 or args.workers < 1:
        parser.error("--frames and --workers must be positive, --warmup not negative")
    with contextlib.ExitStack() as stack:
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            work = args.keep
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="chat-fuzz-")))
        summary = asyncio.run(
            fuzz(
                kind=args.server,
                frames=args.frames,
                warmup=args.warmup,
                workers=args.workers,
                seed=args.seed,
                max_seconds=args.max_seconds,
                work=work,
            )
        )
        print(summary.report())
        if summary.violations and not args.keep:
            for log in work.glob("*.log"):
                print(f"\n{log.name} (last lines):\n{log.read_text(errors='replace')[-4000:]}")
    if args.json:
        figures = dataclasses.asdict(summary) | {"rss_growth": summary.rss_growth}
        args.json.write_text(json.dumps(figures, indent=2))
    return 1 if summary.violations else 0


if __name__ == "__main__":
    sys.exit(main())
