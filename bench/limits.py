"""The load generator's open-file limit: one socket per member, and the processes it starts."""

from __future__ import annotations

import resource


def open_files_limit(wanted: int) -> int:
    """Raise this process's open-file limit towards `wanted`; the limit it got.

    The generator holds one socket per member of every column that runs at
    once. Beyond the hard limit only with privilege: tried, and if refused,
    the hard limit it is.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, max(hard, wanted)))
        return wanted
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
