"""A deployment as docs/deploy.md runs one, on loopback: uvicorn processes on one Redis.

For the soak and the faults (bench.soak, bench.faults): every process the
README's production command (chat.testing.servers) with the production
environment (DJANGO_DEBUG=0, one secret key for all, plain HTTP), a
test-started redis-server (chat.testing.redis_server) and one migrated
SQLite database. `vitals()` reads what a long run must keep flat: each
process's resident memory and open files, Redis's `used_memory`, clients
and open files.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import redis

from chat.testing import servers
from chat.testing.redis_server import RedisServer


@dataclass
class Deployment:
    """Processes and their Redis; `with Deployment(...) as d:` starts and stops them all."""

    scratch: Path
    processes: int = 2
    settings: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.database = self.scratch / "chat.sqlite3"
        self.redis = RedisServer(self.scratch / "redis.log")
        self.env = {
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_SSL_REDIRECT": "0",
            "DJANGO_SECURE_COOKIES": "0",
            "DJANGO_ALLOWED_HOSTS": servers.HOST,
        }
        self.servers: list[servers.ServerProcess] = []

    def __enter__(self) -> Deployment:
        with contextlib.ExitStack() as undo:
            self.redis.start()
            undo.callback(self.redis.stop)
            env = servers.server_env(self.database, **self.env)
            servers.migrate(env)
            if self.settings:
                servers.chat_settings(self.database, **self.settings)
            for _ in range(self.processes):
                server = servers.server_process(
                    "uvicorn", self.database, self.scratch, REDIS_URL=self.redis.url, **self.env
                )
                self.servers.append(server)
                undo.callback(server.stop)
                server.spawn()
            for server in self.servers:
                server.wait_ready()
            undo.pop_all()
        return self

    def __exit__(self, *exc_info: object) -> None:
        for server in self.servers:
            server.stop()
        self.redis.stop()

    @property
    def urls(self) -> list[str]:
        return [server.ws_url for server in self.servers]

    def restart(self, index: int) -> servers.ServerProcess:
        """Start process `index` again on its port (after a kill or a drain), as systemd would."""
        old = self.servers[index]
        old.stop()
        server = servers.server_process(
            "uvicorn",
            self.database,
            self.scratch,
            old.port,
            REDIS_URL=self.redis.url,
            **self.env,
        )
        self.servers[index] = server
        return server.start()

    def vitals(self) -> dict[str, Any]:
        """Memory, open files and CPU time of each process, and Redis's memory and files, now."""
        row: dict[str, Any] = {}
        for index, server in enumerate(self.servers):
            alive = server.process is not None and server.process.poll() is None
            with _gone_is_none():
                process = psutil.Process(server.process.pid) if alive else None
                row[f"rss_mib_{index}"] = process and round(process.memory_info().rss / 2**20, 1)
                row[f"fds_{index}"] = process and process.num_fds()
                times = process and process.cpu_times()
                row[f"cpu_seconds_{index}"] = times and round(times.user + times.system, 2)
        row.update(redis_vitals(self.redis))
        row["fds_client"] = psutil.Process().num_fds()
        return row


def redis_vitals(server: RedisServer) -> dict[str, Any]:
    """Redis's used_memory (MiB), connected clients and open files; None while it is down."""
    row: dict[str, Any] = {"redis_used_mib": None, "redis_clients": None, "redis_fds": None}
    if server.process is None or server.process.poll() is not None:
        return row
    client = redis.Redis(host=servers.HOST, port=server.port, socket_timeout=2)
    try:
        memory, clients = client.info("memory"), client.info("clients")
    except redis.RedisError:
        return row
    finally:
        client.close()
    row["redis_used_mib"] = round(memory["used_memory"] / 2**20, 2)
    row["redis_clients"] = clients["connected_clients"]
    with _gone_is_none():
        row["redis_fds"] = psutil.Process(server.process.pid).num_fds()
    return row


@contextlib.contextmanager
def _gone_is_none() -> Iterator[None]:
    """A process that exits while it is being read is simply not there."""
    with contextlib.suppress(psutil.NoSuchProcess):
        yield
