"""Message ids and timestamps."""

import itertools
import os
import time

# A random prefix per process and a counter: unique across processes without
# coordination, and cheaper than a uuid4 per message.
_PROCESS_PREFIX = os.urandom(6).hex()
_counter = itertools.count(1)


def new_message_id() -> str:
    return f"{_PROCESS_PREFIX}-{next(_counter):x}"


def now_ms() -> int:
    """Milliseconds since the epoch, as the wire protocol's `ts`."""
    return time.time_ns() // 1_000_000
