"""`python -m bench.metrics_cost`: what counting one delivery costs, each way (docs/performance.md).

The relay path writes one frame per member per message, so whatever counts
deliveries runs that often. This times, per call, prometheus_client's
`Counter.inc()` (a lock around a float), the same through `labels()`, and
what chat.metrics does instead: `+= 1` on a plain int held by the
connection's counts, read when /metrics is scraped.
"""

from __future__ import annotations

import argparse
import sys
import timeit

from prometheus_client import CollectorRegistry, Counter

from chat.metrics import Counts

DEFAULT_CALLS = 2_000_000
DEFAULT_REPEATS = 5


class _Connection:
    """Holds its counts as the consumer does (`self.counts`)."""

    def __init__(self) -> None:
        self.counts = Counts()


def measure(calls: int, repeats: int) -> dict[str, float]:
    """Nanoseconds per call of each way to count, the best of `repeats` runs."""
    registry = CollectorRegistry()
    counter = Counter("bench_deliveries", "Deliveries.", registry=registry)
    labelled = Counter("bench_closes", "Closes.", ["code"], registry=registry)
    connection = _Connection()
    ways = {
        "prometheus_client Counter.inc()": ("counter.inc()", {"counter": counter}),
        "prometheus_client labels(...).inc()": (
            'labelled.labels(code="1000").inc()',
            {"labelled": labelled},
        ),
        "chat.metrics: self.counts.delivered += 1": (
            "connection.counts.delivered += 1",
            {"connection": connection},
        ),
        "nothing (the loop itself)": ("pass", {}),
    }
    return {
        name: min(timeit.repeat(statement, globals=names, number=calls, repeat=repeats))
        / calls
        * 1e9
        for name, (statement, names) in ways.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=DEFAULT_CALLS)
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    args = parser.parse_args(argv)
    for name, nanoseconds in measure(args.calls, args.repeats).items():
        print(f"{name:45} {nanoseconds:8.1f} ns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
