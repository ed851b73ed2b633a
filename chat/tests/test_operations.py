"""What an operator relies on besides the chat: the log's format, static files in production."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.test import override_settings

from chat.testing.servers import PROJECT_DIR, server_env

# A time (ISO date and clock) and a level at the start of every text line.
TEXT_LINE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} (DEBUG|INFO|WARNING|ERROR) ")

LOG_SOME_LINES = """
import logging
import django
django.setup()
logging.getLogger("chat.consumers").info(
    "closing %s: too many bad frames",
    "specific.ab!1",
    extra={"room": "lobby", "channel": "specific.ab!1"},
)
logging.getLogger("chat.layers").warning("channel layer lost Redis")
try:
    1 / 0
except ZeroDivisionError:
    logging.getLogger("chat.tasks").exception("background loop failed")
logging.getLogger("django.request").warning("Not Found: /nope")
logging.getLogger("uvicorn.error").info("Started server process")
"""


def log_lines(tmp_path, **env: str) -> list[str]:
    """What a process configured by the settings writes for the lines above, one per entry."""
    result = subprocess.run(
        [sys.executable, "-c", LOG_SOME_LINES],
        cwd=PROJECT_DIR,
        env=server_env(tmp_path / "db.sqlite3", **env),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    # A traceback spans lines of its own in text; every other line is one entry.
    return [line for line in result.stderr.splitlines() if not line.startswith((" ", "Traceback"))]


def test_every_log_line_has_a_time_and_a_level(tmp_path):
    lines = [line for line in log_lines(tmp_path) if not line.startswith("ZeroDivisionError")]
    assert len(lines) == 5, lines
    for line in lines:
        assert TEXT_LINE.match(line), line
    assert "INFO chat.consumers: closing specific.ab!1: too many bad frames" in lines[0]


def test_json_log_format_makes_each_chat_line_one_object(tmp_path):
    lines = log_lines(tmp_path, CHAT_LOG_FORMAT="json")
    chat = [json.loads(line) for line in lines if line.startswith("{")]
    assert [entry["logger"] for entry in chat] == ["chat.consumers", "chat.layers", "chat.tasks"]
    first = chat[0]
    assert first["level"] == "INFO" and first["message"].startswith("closing specific.ab!1")
    assert (first["room"], first["channel"]) == ("lobby", "specific.ab!1")
    assert re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+00:00$", first["time"])
    assert "room" not in chat[1]
    assert "ZeroDivisionError" in chat[2]["exception"]
    # Django's and uvicorn's own lines stay text, with time and level.
    others = [line for line in lines if not line.startswith("{")]
    assert len(others) == 2 and all(TEXT_LINE.match(line) for line in others), others


def test_a_bad_log_format_is_refused(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=PROJECT_DIR,
        env=server_env(tmp_path / "db.sqlite3", CHAT_LOG_FORMAT="xml"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "CHAT_LOG_FORMAT must be text or json" in result.stderr


@pytest.fixture
def production_static(tmp_path):
    """Settings as with DJANGO_DEBUG=0, after the release's collectstatic."""
    from django.conf import settings

    storages = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
    middleware = list(settings.MIDDLEWARE)
    middleware.insert(1, "chatsite.static.StaticFilesMiddleware")
    with override_settings(STATIC_ROOT=tmp_path / "static", STORAGES=storages):
        call_command("collectstatic", "--noinput", verbosity=0)
        with override_settings(MIDDLEWARE=middleware, DEBUG=False):
            yield


@pytest.mark.django_db
async def test_the_app_serves_the_admins_static_files_in_production(
    production_static, async_client
):
    page = await async_client.get("/admin/login/")
    assert page.status_code == 200
    (css,) = re.findall(r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', page.text)
    response = await async_client.get(css, headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/css")
    assert response["Content-Encoding"] == "gzip"
    # A hashed name never changes content: browsers may keep it for good.
    assert "immutable" in response["Cache-Control"]
    # Everything else still reaches Django, on the event loop.
    assert (await async_client.get("/healthz")).status_code == 200
    assert (await async_client.get("/static/admin/css/nope.css")).status_code == 404
