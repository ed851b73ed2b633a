"""One process without Redis is a production deployment: every command of the README works.

SPEC: with DJANGO_DEBUG=0 and no REDIS_URL, every management command and
server command works; `check --deploy` may warn that such a deployment
cannot grow past one process, and nothing refuses to run. Each command runs
as an operator runs it, in a process of its own with the production
environment.
"""

from __future__ import annotations

import http.client
import json
import secrets
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from websockets.asyncio.client import connect as ws_connect

from chat.testing import servers
from chat.testing.wsclient import recv_type, send

pytestmark = pytest.mark.server

SERVERS = ["runserver", "daphne", "uvicorn"]


@pytest.fixture
def database(tmp_path) -> Path:
    return tmp_path / "chat.sqlite3"


@pytest.fixture
def production_env(database) -> dict[str, str]:
    """What an operator of one process behind a TLS proxy sets, and no REDIS_URL."""
    # Nothing from the developer's shell (DJANGO_SSL_REDIRECT=0, say) may
    # soften the production defaults under test.
    env = {
        key: value
        for key, value in servers.server_env(database).items()
        if not key.startswith("DJANGO_") or key == "DJANGO_SETTINGS_MODULE"
    }
    env.update(
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        # The name clients reach the process by: here loopback, which the
        # test's clients and health checks use.
        DJANGO_ALLOWED_HOSTS=servers.HOST,
    )
    assert "REDIS_URL" not in env
    return env


def manage(env: dict[str, str], *args: str, **extra_env: str) -> subprocess.CompletedProcess:
    """`python manage.py <args>` as an operator runs it; fails the test unless it exits 0."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=servers.PROJECT_DIR,
        env={**env, **extra_env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, (
        f"manage.py {' '.join(args)} exited with {result.returncode}:\n"
        f"{result.stdout}{result.stderr}"
    )
    return result


def test_management_commands_work_without_redis(production_env, database):
    manage(production_env, "migrate", "--noinput")

    checked = manage(production_env, "check")
    assert "System check identified no issues" in checked.stdout, checked.stderr

    # Django's own deployment warnings may come too; none of them is an error.
    deploy = manage(production_env, "check", "--deploy")
    assert "chat.W002" in deploy.stderr, deploy.stdout + deploy.stderr

    assert json.loads(manage(production_env, "chat_settings").stdout)["banner"] == ""
    changed = manage(production_env, "chat_settings", "--set", "banner=Hi")
    assert json.loads(changed.stdout)["banner"] == "Hi"
    assert json.loads(manage(production_env, "chat_settings").stdout)["banner"] == "Hi"

    manage(
        production_env,
        "createsuperuser",
        "--noinput",
        DJANGO_SUPERUSER_USERNAME="operator",
        DJANGO_SUPERUSER_EMAIL="operator@example.org",
        DJANGO_SUPERUSER_PASSWORD=secrets.token_urlsafe(16),
    )
    with sqlite3.connect(database) as connection:
        users = connection.execute("SELECT username, is_superuser FROM auth_user").fetchall()
    assert users == [("operator", 1)]


def get(server: servers.ServerProcess, path: str, **headers: str) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection(servers.HOST, server.port, timeout=5)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        return response
    finally:
        connection.close()


@pytest.mark.parametrize("kind", SERVERS)
async def test_servers_work_without_redis(production_env, tmp_path, kind):
    manage(production_env, "migrate", "--noinput")
    port = servers.free_port()
    log = tmp_path / f"{kind}-{port}.log"
    # Started means /healthz answered 200 over plain HTTP, as a health check does.
    with servers.ServerProcess(servers.command(kind, port), production_env, port, log) as server:
        status, body = server.healthz()
        assert (status, json.loads(body)["status"]) == (200, "ok"), body

        # Production settings are in force: plain HTTP goes to HTTPS, and
        # what the TLS proxy forwards is served with HSTS.
        plain = get(server, "/websocket/")
        assert plain.status == 301, server.log()
        assert plain.getheader("Location", "").startswith("https://")
        proxied = get(server, "/websocket/", **{"X-Forwarded-Proto": "https"})
        assert proxied.status == 200, server.log()
        assert proxied.getheader("Strict-Transport-Security")

        url = f"{server.ws_url}/websocket/ws_chat"
        async with ws_connect(url, origin=server.base_url) as hyoga, ws_connect(url) as shun:
            await send(hyoga, {"type": "join", "name": "Hyoga"})
            await recv_type(hyoga, "joined")
            await send(shun, {"name": "Shun", "message": "Bom dia"})
            assert (await recv_type(shun, "joined"))["members"] == ["Hyoga", "Shun"]
            assert (await recv_type(hyoga, "presence"))["name"] == "Shun"
            relayed = await recv_type(hyoga, "message")
            assert (relayed["name"], relayed["message"]) == ("Shun", "Bom dia")
