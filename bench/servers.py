"""The servers under test: how each is started, pinned, measured and stopped."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from chat.testing.servers import HOST, PROJECT_DIR, ServerProcess, command, free_port

REDIS_START_TIMEOUT = 10.0
# A server is idle once it uses less than this share of its core over a probe.
IDLE_CPU_SHARE = 0.05
IDLE_PROBE_SECONDS = 0.3
IDLE_TIMEOUT_SECONDS = 120.0


def uvicorn_argv(app: str, port: int) -> list[str]:
    """uvicorn as the README recommends for production, serving `app`, quieter."""
    argv = command("uvicorn", port)
    return [*argv[:-1], "--log-level", "warning", app]


def stock_uvicorn_argv(app: str, port: int) -> list[str]:
    """uvicorn_argv with uvicorn's own sans-I/O WebSocket protocol instead of chat.uvicorn_frames.

    For reference (a), which is the tutorial's loop on a stock server, and
    for the column that measures what the frame-writing protocol saves.
    """
    argv = uvicorn_argv(app, port)
    at = argv.index("--ws") + 1
    return [*argv[:at], "websockets-sansio", *argv[at + 1 :]]


def daphne_argv(app: str, port: int) -> list[str]:
    """Daphne exactly as the README starts it, serving `app`."""
    return [*command("daphne", port)[:-1], app]


def granian_argv(app: str, port: int) -> list[str]:
    """granian as chat.testing.servers starts it, serving `app`, quieter."""
    argv = command("granian", port)
    return [*argv[:-1], "--log-level", "warning", app]


def module_argv(module: str, port: int) -> list[str]:
    """A server of the benchmark's own, `python -m module --host --port`."""
    return [sys.executable, "-m", module, "--host", HOST, "--port", str(port)]


@dataclass(frozen=True, slots=True)
class ServerKind:
    """How a server program is started, and how bench.sampler runs it instead."""

    argv: Callable[[str, int], list[str]]
    # The command line's module and arguments for `python -m bench.sampler
    # OUT MODULE ARGS...`; None when the application runs in a worker
    # process that the sampler, which samples its own main thread, cannot see.
    sampled: Callable[[list[str]], list[str]] | None


SERVER_KINDS = {
    "uvicorn": ServerKind(uvicorn_argv, lambda argv: ["uvicorn", *argv[1:]]),
    "uvicorn-stock": ServerKind(stock_uvicorn_argv, lambda argv: ["uvicorn", *argv[1:]]),
    "daphne": ServerKind(daphne_argv, lambda argv: ["daphne", *argv[1:]]),
    # granian runs the application in a worker process it spawns.
    "granian": ServerKind(granian_argv, None),
    # A module of the benchmark's own, `app` (reference (c)): drop `python -m`.
    "python": ServerKind(module_argv, lambda argv: argv[2:]),
}


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """One column of the benchmark: a design under one server, on one layer."""

    key: str
    label: str
    design: str
    server: str
    app: str
    redis: bool = False
    env: dict[str, str] = field(default_factory=dict)
    # Chat settings of its own (`manage.py chat_settings --set`), in a
    # database of its own: the same build with a feature turned off.
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def profilable(self) -> bool:
        return SERVER_KINDS[self.server].sampled is not None

    def argv(self, port: int, *, profile: Path | None = None) -> list[str]:
        """The command line; with `profile`, under bench.sampler, which writes at exit."""
        kind = SERVER_KINDS[self.server]
        argv = kind.argv(self.app, port)
        if profile is None:
            return argv
        if kind.sampled is None:
            raise ValueError(f"bench.sampler cannot profile a {self.server} server")
        return [sys.executable, "-m", "bench.sampler", str(profile), *kind.sampled(argv)]


REFERENCE = "tutorial-fastapi"
# Reference (c), the ceiling: every table gives each column's ratio to it
# beside the ratio to (a), and like (a) it runs in every invocation.
CEILING = "raw-picows"
REFERENCES = (REFERENCE, CEILING)
CONFIGS = {
    config.key: config
    for config in [
        ServerConfig(
            REFERENCE,
            "(a) tutorial: FastAPI, dict of sockets, uvicorn",
            "tutorial-fastapi",
            "uvicorn-stock",
            "bench.references.tutorial_fastapi:app",
        ),
        ServerConfig(
            "tutorial-channels",
            "(b) Channels tutorial, stock in-memory layer, Daphne",
            "tutorial-channels",
            "daphne",
            "bench.references.channels_tutorial.asgi:application",
            env={"DJANGO_SETTINGS_MODULE": "bench.references.channels_tutorial.settings"},
        ),
        # It speaks (a)'s URL scheme, where the handshake joins (bench.designs).
        ServerConfig(
            CEILING,
            "(c) ceiling: a bare picows relay, no framework, no JSON",
            "tutorial-fastapi",
            "python",
            "bench.references.raw_picows",
        ),
        ServerConfig("chat-daphne", "chat, Daphne", "chat", "daphne", "chatsite.asgi:application"),
        ServerConfig(
            "chat-uvicorn", "chat, uvicorn", "chat", "uvicorn", "chatsite.asgi:application"
        ),
        # The same build with every frame going through uvicorn's ASGI send
        # (its stock protocol), for what chat.uvicorn_frames saves.
        ServerConfig(
            "chat-uvicorn-asgi",
            "chat, uvicorn, stock WebSocket protocol",
            "chat",
            "uvicorn-stock",
            "chatsite.asgi:application",
        ),
        ServerConfig(
            "chat-granian", "chat, granian", "chat", "granian", "chatsite.asgi:application"
        ),
        # The same build counting for /metrics (CHAT_METRICS_TOKEN set), for
        # SPEC's 3 % budget: bench.report sets it beside chat-uvicorn.
        ServerConfig(
            "chat-uvicorn-metrics",
            "chat, uvicorn, metrics counted",
            "chat",
            "uvicorn",
            "chatsite.asgi:application",
            env={"CHAT_METRICS_TOKEN": "bench"},
        ),
        # The same build with recovery off (recovery_messages=0), for the
        # recovery window's cost: bench.report sets each beside its column.
        ServerConfig(
            "chat-uvicorn-norecovery",
            "chat, uvicorn, recovery off",
            "chat",
            "uvicorn",
            "chatsite.asgi:application",
            settings={"recovery_messages": "0"},
        ),
        ServerConfig(
            "chat-uvicorn-redis",
            "chat, uvicorn, Redis layer",
            "chat",
            "uvicorn",
            "chatsite.asgi:application",
            redis=True,
        ),
        ServerConfig(
            "chat-uvicorn-redis-norecovery",
            "chat, uvicorn, Redis layer, recovery off",
            "chat",
            "uvicorn",
            "chatsite.asgi:application",
            redis=True,
            settings={"recovery_messages": "0"},
        ),
    ]
}
# Opt-in columns: Redis (`--redis`), and a feature turned off (`--recovery`).
REDIS_CONFIGS = [key for key, config in CONFIGS.items() if config.redis and not config.settings]
RECOVERY_OFF = {
    "chat-uvicorn": "chat-uvicorn-norecovery",
    "chat-uvicorn-redis": "chat-uvicorn-redis-norecovery",
}
OPT_IN = {*REDIS_CONFIGS, *RECOVERY_OFF.values()}


class MeasuredServer:
    """A server process pinned to `cpus`, with its CPU time and memory at hand."""

    def __init__(
        self,
        config: ServerConfig,
        *,
        cpus: str,
        env: dict[str, str],
        log_dir: Path,
        profile: Path | None = None,
    ) -> None:
        port = free_port()
        self.config = config
        self.process = ServerProcess(
            ["taskset", "-c", cpus, *config.argv(port, profile=profile)],
            {**env, **config.env},
            port,
            log_dir / f"{config.key}-{port}.log",
        )
        # The server's process and its children (granian's worker), pinned
        # alike: taskset's affinity is inherited.
        self._tree: list[psutil.Process] = []

    def spawn(self) -> MeasuredServer:
        """Start the process without waiting for it (start several, then `wait_ready` each)."""
        self.process.spawn()
        # taskset execs the server, so the child's pid is the server's.
        self._tree = [psutil.Process(self.process.process.pid)]
        return self

    def wait_ready(self) -> None:
        """Wait until it serves; then its workers, if it has any, are there to be measured."""
        self.process.wait_ready()
        self._tree[1:] = self._tree[0].children(recursive=True)

    def __enter__(self) -> MeasuredServer:
        self.spawn().wait_ready()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.process.stop()

    @property
    def pid(self) -> int:
        return self.process.process.pid

    @property
    def ws_url(self) -> str:
        return self.process.ws_url

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(process) for process in self._tree)

    def rss_bytes(self) -> int:
        return sum(process.memory_info().rss for process in self._tree)

    async def idle(self) -> bool:
        """Wait (bounded) until the server has finished its backlog (e.g. presence of joins)."""
        return await wait_idle(self.cpu_seconds)


async def wait_idle(cpu_seconds: Callable[[], float]) -> bool:
    """Wait until `cpu_seconds` (of one process or several) stops growing; False on timeout."""
    deadline = time.monotonic() + IDLE_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        before = cpu_seconds()
        await asyncio.sleep(IDLE_PROBE_SECONDS)
        if cpu_seconds() - before < IDLE_CPU_SHARE * IDLE_PROBE_SECONDS:
            return True
    return False


def cpu_seconds(process: psutil.Process) -> float:
    """User and system CPU time a process has used so far."""
    times = process.cpu_times()
    return times.user + times.system


@contextlib.contextmanager
def redis_server(*, cpus: str, log_dir: Path) -> Iterator[tuple[str, psutil.Process]]:
    """A throw-away redis-server on a free loopback port; its URL and process."""
    port = free_port()
    log = (log_dir / f"redis-{port}.log").open("ab")
    process = subprocess.Popen(
        ["taskset", "-c", cpus, "redis-server", "--bind", HOST, "--port", str(port),
         "--save", "", "--appendonly", "no"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    log.close()
    try:
        _wait_for_redis(port, process)
        yield f"redis://{HOST}:{port}/0", psutil.Process(process.pid)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(REDIS_START_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait_for_redis(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + REDIS_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), 1) as probe:
            probe.sendall(b"PING\r\n")
            if probe.recv(16).startswith(b"+PONG"):
                return
        time.sleep(0.05)
    raise RuntimeError(f"redis-server not ready within {REDIS_START_TIMEOUT} s")


def manage(env: dict[str, str], *args: str) -> str:
    """Run `manage.py` with the servers' environment; its standard output."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_DIR,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.stdout
