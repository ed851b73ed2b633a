"""Real server processes for the tests: start on a free loopback port, stop for sure."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from prometheus_client.parser import text_string_to_metric_families

PROJECT_DIR = Path(__file__).resolve().parents[2]
BIN_DIR = Path(sys.executable).parent
HOST = "127.0.0.1"

# A cold start imports Django and Twisted; on a loaded 2-core machine that can
# take several seconds.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def server_env(database: Path, **extra: str) -> dict[str, str]:
    """The environment of a server process: its own database, no inherited Redis or metrics."""
    inherited = {"REDIS_URL", "DATABASE_URL", "CHAT_METRICS_TOKEN"}
    env = {k: v for k, v in os.environ.items() if k not in inherited}
    env.update(
        DJANGO_SETTINGS_MODULE="chatsite.settings",
        DATABASE_URL=f"sqlite:///{database}",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def migrate(env: Mapping[str, str]) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=PROJECT_DIR,
        env=dict(env),
        check=True,
        timeout=120,
    )


def command(kind: str, port: int) -> list[str]:
    """How the README starts a server of `kind` on `port`."""
    if kind == "runserver":
        return [sys.executable, "manage.py", "runserver", "--noreload", f"{HOST}:{port}"]
    if kind == "runserver-autoreload":
        # As `make run` starts it: a parent process restarting a child that serves.
        return [sys.executable, "manage.py", "runserver", f"{HOST}:{port}"]
    if kind == "daphne":
        return [str(BIN_DIR / "daphne"), "-b", HOST, "-p", str(port), "chatsite.asgi:application"]
    if kind == "uvicorn":
        # The production command of the README; docs/performance.md says why.
        return [
            str(BIN_DIR / "uvicorn"),
            "--host", HOST,
            "--port", str(port),
            "--loop", "uvloop",
            "--http", "httptools",
            "--ws", "chat.uvicorn_frames:FrameWritingProtocol",
            "--ws-per-message-deflate", "false",
            "--ws-max-size", str(64 * 1024),
            "--ws-ping-interval", "20",
            "--ws-ping-timeout", "20",
            "--lifespan", "off",
            "--no-access-log",
            "chatsite.asgi:application",
        ]  # fmt: skip
    if kind == "granian":
        # Not one of the README's commands: measured beside uvicorn
        # (docs/performance.md) and tested for what it keeps of SPEC
        # (chat/tests/test_granian.py). It has no WebSocket size limit to
        # set, and no drain.
        return [
            str(BIN_DIR / "granian"),
            "--interface", "asginl",
            "--host", HOST,
            "--port", str(port),
            "--loop", "uvloop",
            "chatsite.asgi:application",
        ]  # fmt: skip
    raise ValueError(f"unknown server kind {kind!r}")


def chat_moderate(database: Path, *args: str) -> str:
    """Run `manage.py chat_moderate` on a server's database as an operator does; its output."""
    done = subprocess.run(
        [sys.executable, "manage.py", "chat_moderate", *args],
        cwd=PROJECT_DIR,
        env=server_env(database),
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.stdout


def chat_settings(database: Path, **changes: object) -> None:
    """Change the chat settings in a server's database the way an operator does."""
    subprocess.run(
        [sys.executable, "manage.py", "chat_settings"]
        + [f"--set={key}={value}" for key, value in changes.items()],
        cwd=PROJECT_DIR,
        env=server_env(database),
        check=True,
        capture_output=True,
        timeout=60,
    )


def server_process(
    kind: str,
    database: Path,
    log_dir: Path,
    port: int | None = None,
    *,
    args: Sequence[str] = (),
    **env: str,
) -> ServerProcess:
    """A server of `kind` with its own database on `port` (a free one if not given); not started.

    `args`: more options for the server's command line (`--proxy-headers`).
    """
    port = port or free_port()
    return ServerProcess(
        [*command(kind, port), *args],
        server_env(database, **env),
        port,
        log_dir / f"{kind}-{port}.log",
    )


class Reapable(Protocol):
    process: subprocess.Popen | None

    def stop(self) -> None: ...

    def log(self) -> str: ...


def wait_until_ready(server: Reapable, ready: Callable[[], bool], timeout: float) -> None:
    """Poll `ready` until it holds; fail with the log if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"exited with {server.process.returncode}:\n{server.log()}")
        if ready():
            return
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"not ready within {timeout} s:\n{server.log()}")


class ServerProcess:
    """One server process; `stop()` (or the context manager) always reaps it."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], port: int, log: Path) -> None:
        self.argv = list(argv)
        self.env = dict(env)
        self.port = port
        self.log_path = log
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}"

    def start(self) -> ServerProcess:
        """Spawn the process and wait until it serves."""
        self.spawn()
        self.wait_ready()
        return self

    def spawn(self) -> ServerProcess:
        """Spawn the process without waiting (start several, then `wait_ready` each)."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv,
            cwd=PROJECT_DIR,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    def wait_ready(self) -> None:
        """Poll /healthz until it answers 200; fail with the log if the process dies."""
        wait_until_ready(self, lambda: self.healthz()[0] == 200, START_TIMEOUT)

    def healthz(self) -> tuple[int, str]:
        """Status and body of GET /healthz, or (0, reason) if nothing answers."""
        connection = http.client.HTTPConnection(HOST, self.port, timeout=5)
        try:
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            return response.status, response.read().decode()
        except OSError as error:
            return 0, str(error)
        finally:
            connection.close()

    def scrape(self, token: str) -> dict[str, float]:
        """GET /metrics with the bearer `token`: every sample, by name and labels.

        Keys as `chat_closes_total{code=1009}` (labels sorted, unquoted).
        """
        connection = http.client.HTTPConnection(HOST, self.port, timeout=5)
        try:
            connection.request("GET", "/metrics", headers={"Authorization": f"Bearer {token}"})
            response = connection.getresponse()
            text = response.read().decode()
        finally:
            connection.close()
        if response.status != 200:
            raise RuntimeError(f"GET /metrics answered {response.status}: {text[:200]}")
        samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f"{key}={val}" for key, val in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return samples

    def kill(self) -> None:
        """SIGKILL: the process dies without any cleanup of its own."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(STOP_TIMEOUT)

    def stop(self) -> None:
        if not self.process or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
