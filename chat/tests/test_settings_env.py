"""chatsite.settings reads the environment at import, so each case imports it in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from chat.testing.servers import PROJECT_DIR

PRINT_DATABASE = (
    "import json; from django.conf import settings; "
    "print(json.dumps(settings.DATABASES['default'], default=str))"
)


def database_setting(**env: str) -> dict:
    """settings.DATABASES["default"] as a process started with `env` sees it."""
    inherited = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    result = subprocess.run(
        [sys.executable, "-c", PRINT_DATABASE],
        cwd=PROJECT_DIR,
        env={**inherited, "DJANGO_SETTINGS_MODULE": "chatsite.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("blank", ["", "  "])
def test_blank_database_url_means_the_default_sqlite_file(blank):
    database = database_setting(DATABASE_URL=blank)
    assert database["ENGINE"] == "django.db.backends.sqlite3"
    assert database["NAME"] == str(PROJECT_DIR / "db.sqlite3")
    assert database["OPTIONS"] == {"timeout": 20}
    assert database == database_setting()


def test_database_url_is_read_when_given(tmp_path):
    database = database_setting(DATABASE_URL=f"sqlite:///{tmp_path / 'other.sqlite3'}")
    assert database["NAME"] == str(tmp_path / "other.sqlite3")
