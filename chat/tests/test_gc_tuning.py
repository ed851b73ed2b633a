"""The server process's collector settings, applied by the ASGI module."""

from __future__ import annotations

import gc
import subprocess
import sys

from chat.testing.servers import PROJECT_DIR, server_env

MEMBERS = 4000
MESSAGES = 20


def fresh_python(tmp_path, *args: str) -> str:
    """Standard output of `python ARGS` in a fresh interpreter with a server's environment."""
    result = subprocess.run(
        [sys.executable, *args],
        cwd=PROJECT_DIR,
        env=server_env(tmp_path / "db.sqlite3"),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return result.stdout


def test_asgi_module_freezes_startup_and_sets_the_thresholds(tmp_path):
    # A fresh interpreter: this test process has imported the app long ago.
    probe = (
        "import gc\n"
        "before = gc.get_threshold()\n"
        "import chatsite.asgi\n"
        "print(*before, *gc.get_threshold(), gc.get_freeze_count())\n"
    )
    *before, young, middle, full, frozen = (
        int(word) for word in fresh_python(tmp_path, "-c", probe).split()
    )
    from chatsite import gc_tuning

    assert before == [700, 10, 10]
    assert (young, middle, full) == (
        gc_tuning.YOUNG_COLLECTION_AFTER,
        gc_tuning.MIDDLE_COLLECTION_AFTER,
        gc_tuning.FULL_COLLECTION_AFTER,
    )
    # Django's modules, classes and settings: tens of thousands of objects.
    assert frozen > 50_000
    assert gc.isenabled()


def test_messages_to_a_large_room_set_off_no_collection(tmp_path):
    """Each message wakes every member at once; no collection may start meanwhile.

    With CPython's defaults the same messages set off collections of every
    generation (the control run), which is what made the relay's p99 a
    full collection's pause (docs/performance.md).
    """
    probe = ["-m", "chat.tests.gc_probe", str(MEMBERS), str(MESSAGES)]
    young, middle, full = (int(word) for word in fresh_python(tmp_path, *probe).split())
    assert young > MESSAGES and middle > 0, "the control run should collect"
    young, middle, full = (int(word) for word in fresh_python(tmp_path, *probe, "--tuned").split())
    # At most one young collection for the probe's own few allocations.
    assert (young <= 1, middle, full) == (True, 0, 0)
