"""A short run of `make fuzz` (chat.testing.fuzz), under uvicorn and under Daphne."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from chat.testing.fuzzcases import Kind
from chat.testing.servers import PROJECT_DIR

pytestmark = pytest.mark.server

# Enough for every kind of case a few times over; a few seconds of fuzzing.
FRAMES = 1_500
WARMUP = 500


@pytest.mark.parametrize("kind", ["uvicorn", "daphne"])
def test_a_short_fuzz_run_finds_nothing(tmp_path, kind):
    out = tmp_path / "fuzz.json"
    done = subprocess.run(
        [sys.executable, "-m", "chat.testing.fuzz", "--server", kind, "--frames", str(FRAMES),
         "--warmup", str(WARMUP), "--max-seconds", "150", "--json", str(out)],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=170,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    summary = json.loads(out.read_text())
    assert summary["violations"] == []
    assert summary["frames"] >= FRAMES and summary["warmup_frames"] >= WARMUP
    seen = {case for case, _, _ in summary["outcomes"]}
    assert seen == {str(case) for case in Kind}
    outcomes = {outcome for _, outcome, _ in summary["outcomes"]}
    assert {"close 1009", "close 1002", "close 1007", "ignored after close 4008"} <= outcomes
    assert summary["relayed"] > 0
    assert set(summary["observer_messages"].values()) == {summary["relayed"]}
    assert summary["health_answered"] > 0 and summary["health_failures"] == []
    assert summary["errors_seen"] == summary["errors_counted"]
    assert summary["rss_growth"] <= 0.10
    assert "| **all** |" in done.stdout
