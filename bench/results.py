"""What every benchmark run writes: its conditions, and its rows and report in OUT."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def conditions(**settings: Any) -> dict[str, Any]:
    """The row that says when, on what and how a run was made; `settings` are the run's own."""
    return {
        "kind": "conditions",
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
        # The machine is shared: the load says how much else ran meanwhile.
        "loadavg": os.getloadavg(),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "command": " ".join(sys.argv),
        **settings,
    }


def save(out: Path, name: str, rows: list[dict[str, Any]], report: str) -> Path:
    """OUT/<name>-<time>.jsonl (a row a line) and .md (the report), the report printed too."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    jsonl = out / f"{name}-{stamp}.jsonl"
    with jsonl.open("w") as lines:
        for row in rows:
            lines.write(json.dumps(row) + "\n")
    (out / f"{name}-{stamp}.md").write_text(report + "\n")
    print(report)
    print(f"\n{jsonl}")
    return jsonl
