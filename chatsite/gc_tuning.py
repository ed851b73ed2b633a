"""Garbage-collector settings for a server process that holds thousands of sockets.

Every open WebSocket keeps about 120 objects the cyclic collector tracks
(the server's protocol and frames, the consumer, its tasks and coroutines).
CPython runs a full collection, which visits every tracked object, whenever
the long-lived objects have grown by a quarter and ten middle-generation
collections have passed. A room filling up is exactly that growth: 5,000
members joining one process set off eleven full collections, the last ones
near a second each, 4 to 5 s of CPU in all (docs/performance.md).

Two changes, both about the full collection only (the young generations,
which free the short-lived garbage of each relayed message, keep CPython's
defaults):

- `gc.freeze()` once the application is built: Django's modules, classes
  and settings (about 90,000 objects) live as long as the process, so no
  collection needs to look at them again, and each full collection that
  still runs is that much shorter: a shorter pause for every room.
- A full collection at most once per `FULL_COLLECTION_AFTER`
  middle-generation collections instead of 10. A closed connection is freed
  by reference counting (chat.dispatch breaks the one cycle it made;
  tests.test_consumer checks it), so what waits for a full collection is
  the little that the servers' own reference cycles keep.
"""

from __future__ import annotations

import gc

# Middle-generation collections between two full ones (CPython: 10).
# Measured on 5,000 joins (docs/performance.md): 10 -> eleven full
# collections, 100 -> one or two; more saves little and keeps the servers'
# garbage longer.
FULL_COLLECTION_AFTER = 100


def tune_for_long_lived_connections() -> None:
    """Freeze what startup made and make full collections rarer; call once the app is built."""
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_AFTER)
