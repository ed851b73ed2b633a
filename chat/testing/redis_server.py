"""A throwaway redis-server on a free loopback port, never the machine's own Redis."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import redis

from chat.testing.servers import HOST, STOP_TIMEOUT, free_port, wait_until_ready

# redis-server starts in milliseconds; a loaded machine gets some slack.
START_TIMEOUT = 10.0


class RedisServer:
    """One redis-server that keeps nothing on disk; `stop()` and `start()` keep its port."""

    def __init__(self, log: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.log_path = log
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> RedisServer:
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError("redis-server is not installed; `make test` installs it")
        argv = [executable, "--port", str(self.port), "--bind", HOST, "--save", ""]
        argv += ["--appendonly", "no", "--logfile", ""]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        wait_until_ready(self, self.ping, START_TIMEOUT)

    def ping(self) -> bool:
        client = redis.Redis(host=HOST, port=self.port, socket_timeout=1, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def pause(self) -> None:
        """Freeze the server: connections stay open and nothing answers (a silent network)."""
        assert self.process is not None and self.process.poll() is None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.resume()
        self.process.terminate()
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def count_writes(monkeypatch, command: bytes) -> list[int]:
    """Record, for every write of a redis-py asyncio connection, how many `command`s it held."""
    from redis.asyncio.connection import Connection

    writes: list[int] = []
    write = Connection.send_packed_command

    async def counted(self, packed, check_health=True):
        data = packed if isinstance(packed, bytes) else b"".join(packed)
        writes.append(data.count(command))
        return await write(self, packed, check_health)

    monkeypatch.setattr(Connection, "send_packed_command", counted)
    return writes
