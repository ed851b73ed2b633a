"""docs/deploy.md, followed as written: nginx in front of two uvicorn processes and a Redis.

The guide's own files (docs/nginx.conf, docs/chat@.service, docs/chat.env)
are rendered for loopback with free ports, a throw-away certificate and a
short proxy_read_timeout; every command of the guide runs; then the checks
an operator makes by hand: the page, the admin's CSS, a login over TLS, two
people on different processes, an idle connection, the frame limit.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from pathlib import Path

import pytest
from websockets.asyncio.client import connect as ws_connect

from chat.testing.redis_server import RedisServer
from chat.testing.servers import HOST, PROJECT_DIR, STOP_TIMEOUT, ServerProcess, free_port
from chat.testing.wsclient import closed_code, recv, recv_type, send

pytestmark = [pytest.mark.deploy, pytest.mark.server, pytest.mark.redis]

DOCS = PROJECT_DIR / "docs"
GUIDE = DOCS / "deploy.md"
NGINX = shutil.which("nginx") or next(
    (str(path) for path in [Path("/usr/sbin/nginx")] if path.exists()), None
)
# Short enough to wait out in a test; the servers ping more often than this.
PROXY_READ_TIMEOUT = 3
PING_INTERVAL = 1
ADMIN_PASSWORD = "a-long-admin-password-for-the-test"
START_TIMEOUT = 30.0

if NGINX is None:
    pytest.skip("nginx is not installed (`make test` installs it as root)", allow_module_level=True)


class Renderer:
    """Replace the guide's values with the test's; every rule must apply somewhere.

    A rule that applies nowhere means the guide changed under the test,
    which must then be told what the new text means.
    """

    def __init__(self, rules: list[tuple[str, str]]) -> None:
        self.rules = rules
        self.used: set[str] = set()

    def __call__(self, text: str) -> str:
        for old, new in self.rules:
            if old in text:
                self.used.add(old)
                text = text.replace(old, new)
        return text

    def unused(self) -> list[str]:
        return [old for old, _ in self.rules if old not in self.used]


def fenced_blocks(markdown: str, language: str) -> list[str]:
    """The contents of the guide's ```language blocks, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```$", markdown, flags=re.M | re.S)


def commands(block: str) -> list[str]:
    """A shell block's commands, continuation lines joined."""
    return [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def environment_file(path: Path) -> dict[str, str]:
    """KEY=value lines, as systemd's EnvironmentFile= reads them (no quoting here)."""
    pairs = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def clean_environment() -> dict[str, str]:
    """This process's environment without anything of the chat's own configuration."""
    prefixes = ("DJANGO_", "CHAT_", "REDIS_URL", "DATABASE_URL")
    return {key: value for key, value in os.environ.items() if not key.startswith(prefixes)}


def unit_settings(unit: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and line[0] != "#")


def readme_uvicorn_commands() -> list[list[str]]:
    """The uvicorn command lines of the README's examples."""
    readme = (PROJECT_DIR / "README.md").read_text()
    lines = [
        line.rstrip(" &")
        for block in fenced_blocks(readme, "sh")
        for line in commands(block)
        if line.startswith(".venv/bin/uvicorn")
    ]
    return [shlex.split(line) for line in lines]


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, valid for a day."""
    cert, key = directory / "fullchain.pem", directory / "privkey.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={HOST}",
         "-addext", f"subjectAltName=IP:{HOST}"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def wait_for_port(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited with {process.returncode}:\n{log.read_text()}")
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nginx not listening within {START_TIMEOUT} s:\n{log.read_text()}")


@dataclass
class Deployment:
    """What the guide set up, and what the test needs to talk to it."""

    tls_port: int
    http_port: int
    servers: list[ServerProcess]
    env: dict[str, str]
    ssl_context: ssl.SSLContext
    token: str
    ran: list[str] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"https://{HOST}:{self.tls_port}"

    def https(self) -> urllib.request.OpenerDirector:
        """A browser-like client: cookies, redirects, the test's CA."""
        return urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=self.ssl_context),
            urllib.request.HTTPCookieProcessor(CookieJar()),
        )

    def websocket(self, room: str, **options):
        return ws_connect(
            f"wss://{HOST}:{self.tls_port}/websocket/ws_chat/{room}",
            ssl=self.ssl_context,
            origin=self.origin,
            **options,
        )


def run_shell(script: str, env: dict[str, str], stdin: str = "") -> str:
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=PROJECT_DIR,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{script}\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Iterator[Deployment]:
    tmp = tmp_path_factory.mktemp("deploy")
    guide = GUIDE.read_text()
    tls_port, http_port, *app_ports = (free_port() for _ in range(4))
    cert, key = make_certificate(tmp)
    redis = RedisServer(tmp / "redis.log").start()
    env_path = tmp / "chat.env"
    token = secrets.token_urlsafe(32)
    render = Renderer(
        [
            ("/etc/ssl/chat.example.org/fullchain.pem", str(cert)),
            ("/etc/ssl/chat.example.org/privkey.pem", str(key)),
            ("sqlite:////srv/chat/db.sqlite3", f"sqlite:///{tmp / 'chat.sqlite3'}"),
            ("/etc/chat.env", str(env_path)),
            ("/srv/chat", str(PROJECT_DIR)),
            ("replace-with-a-long-random-string-the-same-in-every-process",
             secrets.token_urlsafe(50)),
            ("replace-with-another-long-random-string", token),
            ("redis://127.0.0.1:6379/0", redis.url),
            ("listen 443 ssl http2;", f"listen {HOST}:{tls_port} ssl http2;"),
            ("listen 80;", f"listen {HOST}:{http_port};"),
            ("return 301 https://$host$request_uri;",
             f"return 301 https://$host:{tls_port}$request_uri;"),
            ("proxy_read_timeout 60s;", f"proxy_read_timeout {PROXY_READ_TIMEOUT}s;"),
            ("--ws-ping-interval 20", f"--ws-ping-interval {PING_INTERVAL}"),
            ("127.0.0.1:8001", f"{HOST}:{app_ports[0]}"),
            ("127.0.0.1:8002", f"{HOST}:{app_ports[1]}"),
            ("chat.example.org", HOST),
        ]
    )  # fmt: skip
    started: list[ServerProcess] = []
    nginx: subprocess.Popen | None = None
    try:
        # The files the guide shows are the files in docs/, to the byte.
        files = {name: (DOCS / name).read_text() for name in ["chat.env", "chat@.service"]}
        ini_blocks = fenced_blocks(guide, "ini")
        assert sorted(ini_blocks) == sorted(files.values())
        nginx_conf = (DOCS / "nginx.conf").read_text()
        assert fenced_blocks(guide, "nginx") == [nginx_conf]

        env_path.write_text(render(files["chat.env"]))
        base_env = clean_environment()
        install, first_time, checks = (render(block) for block in fenced_blocks(guide, "sh"))
        ran = [*commands(install), *commands(first_time)]
        output = run_shell(install + first_time, base_env, stdin=ADMIN_PASSWORD + "\n")
        assert "System check identified no issues" in output

        unit = unit_settings(render(files["chat@.service"]))
        argv_template = shlex.split(unit["ExecStart"])
        assert Path(unit["WorkingDirectory"]) == PROJECT_DIR
        server_env = {**base_env, **environment_file(Path(unit["EnvironmentFile"]))}
        for port in app_ports:
            argv = [part.replace("%i", str(port)) for part in argv_template]
            process = ServerProcess(argv, server_env, port, tmp / f"uvicorn-{port}.log")
            started.append(process.spawn())
        for process in started:
            process.wait_ready()

        conf = tmp / "nginx.conf"
        (tmp / "chat.conf").write_text(render(nginx_conf))
        root = "user root;" if os.geteuid() == 0 else ""
        temp_paths = "".join(
            f"{kind}_temp_path {tmp / kind};\n"
            for kind in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
        )
        conf.write_text(
            f"{root}\ndaemon off;\nworker_processes 1;\npid {tmp / 'nginx.pid'};\n"
            f"error_log {tmp / 'nginx-error.log'} info;\nevents {{ worker_connections 256; }}\n"
            f"http {{\naccess_log {tmp / 'nginx-access.log'};\n{temp_paths}"
            f"include {tmp / 'chat.conf'};\n}}\n"
        )
        nginx_args = [NGINX, "-p", str(tmp), "-e", str(tmp / "nginx-error.log"), "-c", str(conf)]
        # The guide's `nginx -t`, on the rendered configuration.
        tested = subprocess.run([*nginx_args, "-t"], capture_output=True, text=True, timeout=30)
        assert tested.returncode == 0, tested.stderr
        nginx_log = tmp / "nginx-stderr.log"
        with nginx_log.open("wb") as log:
            nginx = subprocess.Popen(nginx_args, stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(tls_port, nginx, nginx_log)
        wait_for_port(http_port, nginx, nginx_log)

        # The guide's checks, with the environment loaded as it says.
        checks_env = f"set -a; . {env_path}; set +a\n"
        metrics_text = run_shell(checks_env + checks, base_env)
        assert '"status": "ok"' in metrics_text.replace('":"', '": "')
        assert "# HELP chat_connections" in metrics_text
        ran += commands(checks)

        assert render.unused() == [], "the guide changed: teach the test its new text"
        context = ssl.create_default_context(cafile=str(cert))
        yield Deployment(tls_port, http_port, started, server_env, context, token, ran)
    finally:
        if nginx is not None and nginx.poll() is None:
            nginx.send_signal(signal.SIGQUIT)
            try:
                nginx.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                nginx.kill()
                nginx.wait()
        for process in started:
            process.stop()
        redis.stop()


def test_every_command_of_the_guide_ran(deployment):
    guide = GUIDE.read_text()
    # Install and release, the first time's admin user, the checks: three
    # blocks, all run by the fixture. A new block needs a place in it.
    assert len(fenced_blocks(guide, "sh")) == 3
    assert len(deployment.ran) == sum(len(commands(block)) for block in fenced_blocks(guide, "sh"))
    # The README's uvicorn command is the unit's, on its own port.
    unit = unit_settings((DOCS / "chat@.service").read_text())
    unit_argv = shlex.split(unit["ExecStart"])
    readme = readme_uvicorn_commands()
    assert readme, "the README shows how to start uvicorn"
    for argv in readme:
        port = argv[argv.index("--port") + 1]
        expected = [part.replace("/srv/chat/", "").replace("%i", port) for part in unit_argv]
        assert argv == expected


def test_plain_http_is_redirected_to_https_with_the_port(deployment):
    connection = http.client.HTTPConnection(HOST, deployment.http_port, timeout=10)
    connection.request("GET", "/websocket/")
    response = connection.getresponse()
    assert response.status == 301
    assert response.getheader("Location") == f"{deployment.origin}/websocket/"
    connection.close()


def test_the_page_and_the_admins_css_load_through_nginx(deployment):
    browser = deployment.https()
    page = browser.open(f"{deployment.origin}/websocket/", timeout=10)
    assert page.status == 200 and 'id="message"' in page.read().decode()
    login = browser.open(f"{deployment.origin}/admin/login/", timeout=10).read().decode()
    stylesheets = re.findall(r'<link rel="stylesheet" href="([^"]+)"', login)
    assert any("/static/admin/css/base." in href for href in stylesheets), stylesheets
    for href in stylesheets:
        css = browser.open(urllib.parse.urljoin(deployment.origin, href), timeout=10)
        assert css.status == 200
        assert css.headers["Content-Type"].startswith("text/css")


def test_an_admin_login_over_tls_passes_csrf(deployment):
    browser = deployment.https()
    login_url = f"{deployment.origin}/admin/login/?next=/admin/"
    form = browser.open(login_url, timeout=10).read().decode()
    (csrf,) = re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
    fields = {
        "csrfmiddlewaretoken": csrf,
        "username": "admin",
        "password": ADMIN_PASSWORD,
        "next": "/admin/",
    }
    request = urllib.request.Request(
        login_url,
        data=urllib.parse.urlencode(fields).encode(),
        # What a browser sends with the form.
        headers={"Origin": deployment.origin, "Referer": login_url},
    )
    response = browser.open(request, timeout=10)
    assert response.url == f"{deployment.origin}/admin/"
    assert "Site administration" in response.read().decode()


def members(server: ServerProcess, token: str) -> float:
    """chat_members of one process, from its /metrics as Prometheus scrapes it."""
    connection = http.client.HTTPConnection(HOST, server.port, timeout=10)
    try:
        connection.request("GET", "/metrics", headers={"Authorization": f"Bearer {token}"})
        text = connection.getresponse().read().decode()
    finally:
        connection.close()
    (line,) = [line for line in text.splitlines() if line.startswith("chat_members ")]
    return float(line.split()[1])


async def test_two_people_on_different_processes_talk(deployment):
    async with deployment.websocket("deploy") as seiya:
        await send(seiya, {"type": "join", "name": "Seiya"})
        await recv_type(seiya, "joined")
        async with deployment.websocket("deploy") as shun:
            await send(shun, {"name": "Shun", "message": "Olá"})
            assert (await recv_type(shun, "joined"))["members"] == ["Seiya", "Shun"]
            assert (await recv_type(seiya, "presence"))["name"] == "Shun"
            assert (await recv_type(seiya, "message"))["message"] == "Olá"
            await send(seiya, {"message": "Oi"})
            assert (await recv_type(shun, "message"))["message"] == "Oi"
            # nginx's least_conn put them on different processes, each counting its own.
            counted = [members(server, deployment.token) for server in deployment.servers]
            assert counted == [1, 1]


async def test_an_idle_connection_outlives_proxy_read_timeout(deployment):
    # The client sends no pings of its own: only the servers' keep it open.
    async with deployment.websocket("idle", ping_interval=None) as idle:
        await send(idle, {"type": "join", "name": "Hyoga"})
        await recv_type(idle, "joined")
        await asyncio.sleep(3 * PROXY_READ_TIMEOUT)
        await send(idle, {"type": "ping"})
        assert await recv(idle) == {"type": "pong"}


async def test_a_70_kb_frame_is_closed_with_1009_through_nginx(deployment):
    async with deployment.websocket("big") as ws:
        await send(ws, {"type": "join", "name": "Ikki"})
        await recv_type(ws, "joined")
        await ws.send(json.dumps({"message": "x" * 70_000}))
        assert await closed_code(ws) == 1009
