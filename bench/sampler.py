"""`python -m bench.sampler OUT MODULE ARGS...`: run a server module under a stack sampler.

A thread samples the main thread's stack every few milliseconds (cheap, unlike
a profiler that hooks every call) and, when the server exits, writes the
functions that were on CPU most: self samples (the function itself) and
total samples (the function or anything it called). py-spy would do this from
outside; it cannot attach to processes on every machine, so this runs inside.
"""

from __future__ import annotations

import atexit
import collections
import runpy
import sys
import threading
from pathlib import Path

INTERVAL_SECONDS = 0.01
# Written this often too, so a server killed at the end still leaves its profile.
DUMP_EVERY_SAMPLES = 100
TOP = 40


def _where(frame) -> str:
    code = frame.f_code
    return f"{code.co_qualname} ({Path(code.co_filename).name}:{code.co_firstlineno})"


def start(out: Path) -> None:
    main_id = threading.main_thread().ident
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    stop = threading.Event()
    samples = 0

    def sample() -> None:
        nonlocal samples
        while not stop.wait(INTERVAL_SECONDS):
            frame = sys._current_frames().get(main_id)
            if frame is None:
                continue
            samples += 1
            if samples % DUMP_EVERY_SAMPLES == 0:
                dump()
            own[_where(frame)] += 1
            seen = set()
            while frame is not None:
                where = _where(frame)
                if where not in seen:
                    seen.add(where)
                    total[where] += 1
                frame = frame.f_back

    def dump() -> None:
        lines = [f"{samples} samples every {INTERVAL_SECONDS * 1000:g} ms", "", "self %  function"]
        lines += [f"{n * 100 / max(1, samples):6.1f}  {w}" for w, n in own.most_common(TOP)]
        lines += ["", "total %  function"]
        lines += [f"{n * 100 / max(1, samples):6.1f}  {w}" for w, n in total.most_common(TOP)]
        out.write_text("\n".join(lines) + "\n")

    threading.Thread(target=sample, name="bench-sampler", daemon=True).start()
    atexit.register(stop.set)
    atexit.register(dump)


def main() -> None:
    out, module, *args = sys.argv[1:]
    start(Path(out))
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
