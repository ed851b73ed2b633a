"""Smoke test of `python -m bench.slow_readers`, so the benchmark cannot rot unnoticed.

A room of 20 instead of 500 and phases of 2 s: the same script, the same
verdicts (nothing lost or doubled, the stalled member let go with 4029),
and every figure of its report present.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from chat.testing.servers import PROJECT_DIR

pytestmark = pytest.mark.server


def test_a_small_slow_reader_run_loses_nothing_and_lets_the_stalled_member_go(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "bench.slow_readers", "--members", "20", "--senders", "2",
         "--rate", "20", "--seconds", "2", "--rounds", "1", "--out", str(tmp_path)],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (results,) = tmp_path.glob("slow-readers-*.jsonl")
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    phases = {row["phase"]: row for row in rows if row["kind"] == "phase"}
    assert set(phases) == {"none", "stalled", "slow-link"}
    for row in phases.values():
        assert row["delivered"] == row["expected"] > 0 and row["lost"] == 0, row
        assert row["latency_ms"]["p99"] > 0, row
    # The stalled member read next to nothing; the slow link read what it could.
    assert phases["stalled"]["extra_bytes_read"] < phases["slow-link"]["extra_bytes_read"]
    (flood,) = (row for row in rows if row["kind"] == "flood" and row["stalled"])
    assert flood["close_code"] == 4029 and flood["let_go_seconds"] > 0, flood
    # It got a run of messages before the close, far fewer than were sent.
    assert 0 < flood["messages_it_got"] < flood["messages"], flood
    report = next(tmp_path.glob("slow-readers-*.md")).read_text()
    assert "| stalled | 21 |" in report and "| a stalled member |" in report
