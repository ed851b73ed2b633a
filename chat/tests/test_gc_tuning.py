"""The server process's collector settings, applied by the ASGI module."""

from __future__ import annotations

import gc
import subprocess
import sys

from chat.tests.servers import PROJECT_DIR, server_env


def test_asgi_module_freezes_startup_and_makes_full_collections_rare(tmp_path):
    # A fresh interpreter: this test process has imported the app long ago.
    probe = (
        "import gc\n"
        "before = gc.get_threshold()\n"
        "import chatsite.asgi\n"
        "print(before[2], gc.get_threshold()[2], gc.get_freeze_count())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=PROJECT_DIR,
        env=server_env(tmp_path / "db.sqlite3"),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    before, after, frozen = (int(word) for word in result.stdout.split())
    from chatsite.gc_tuning import FULL_COLLECTION_AFTER

    assert before == 10
    assert after == FULL_COLLECTION_AFTER
    # Django's modules, classes and settings: tens of thousands of objects.
    assert frozen > 50_000
    assert gc.isenabled()
