"""Smoke test of `make soak`: 20 members for 20 s, so the soak cannot rot unnoticed.

The real soak (1,000 members, 10 minutes) is not part of the suite; this
runs the same script on the same kind of deployment (two uvicorn processes,
one test-started Redis) and checks its verdicts and its report.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from chat.testing.servers import PROJECT_DIR

pytestmark = [pytest.mark.server, pytest.mark.redis]


def test_a_short_soak_loses_nothing_and_reports_every_figure(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--members", "20", "--rooms", "2",
         "--minutes", str(20 / 60), "--interval", "1", "--churn", "1",
         "--sample-seconds", "5", "--out", str(tmp_path)],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=150,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (results,) = tmp_path.glob("soak-*.jsonl")
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    summary = next(row for row in rows if row["kind"] == "summary")
    assert summary["drained"], summary
    assert (summary["lost"], summary["doubled"], summary["content_mismatched"]) == (0, 0, 0)
    assert (summary["ghosts"], summary["missing"]) == (0, 0), summary
    # Members came and went, and those who dropped resumed with nothing missed.
    assert summary["drops"] + summary["leaves"] > 0, summary
    assert summary["recovered"] == summary["drops"] and summary["not_recovered"] == 0, summary
    assert summary["sent"] == summary["acked"] > 100, summary
    samples = [row for row in rows if row["kind"] == "sample"]
    assert len(samples) >= 3
    for sample in samples:
        for key in ("rss_mib_0", "rss_mib_1", "fds_0", "fds_1", "redis_used_mib", "redis_fds"):
            assert sample[key] > 0, (key, sample)
        assert sample["latency_ms"]["p99"] > 0, sample
    report = next(tmp_path.glob("soak-*.md")).read_text()
    assert "| t s | joined | msg/s |" in report and "- lost: 0" in report
