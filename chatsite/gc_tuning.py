"""Garbage-collector settings for a server process that holds thousands of sockets.

Every open WebSocket keeps about 100 objects the cyclic collector tracks
(the server's protocol and frames, the consumer, its task and coroutines).
CPython's defaults are made for programs whose objects come and go; a chat
server's stay for as long as their connections, and two of its moments
fight those defaults (docs/performance.md has the measurements):

- **A room filling up.** CPython runs a full collection, which visits every
  tracked object, whenever the long-lived objects have grown by a quarter
  and ten middle-generation collections have passed. 5,000 members joining
  one process set off eleven of them, the last ones near a second each.
- **A message to a large room.** Delivering it wakes every member: a
  callback handle per member, all alive at once until the members have
  run. With the young generation's default threshold (700 allocations)
  that burst sets off collections in the middle of every fan-out, each
  finds the handles and the members' next waiters alive and promotes them,
  and the promoted pile up into a full collection every few seconds: at
  5,000 members and three messages a second, a 0.45 s pause every 10 s,
  which was the relay's p99.

So:

- `gc.freeze()` once the application is built: Django's modules, classes
  and settings (about 90,000 objects) live as long as the process, so no
  collection needs to look at them again, and each full collection that
  still runs is that much shorter: a shorter pause for every room.
- A young generation of `YOUNG_COLLECTION_AFTER` allocations, larger than
  the burst of a message to a room of up to 5,000 members (about two
  tracked objects per member), so that a fan-out ends before a collection
  can start: in steady relay nothing survives and nothing is collected.
- Full collections as often as before in terms of allocations
  (`YOUNG_COLLECTION_AFTER` x `MIDDLE_COLLECTION_AFTER` x
  `FULL_COLLECTION_AFTER`, about 700,000), which bounds the garbage of
  uvicorn's and websockets' own reference cycles (11 objects per closed
  connection) that waits for one: 20,000 members joining and leaving
  level off at the same RSS. A closed connection of ours is freed by
  reference counting (chat.dispatch breaks the one cycle it made;
  tests.test_consumer checks it).
"""

from __future__ import annotations

import gc

# Allocations (net of deallocations) between two young collections
# (CPython: 700). Above twice the members of the largest room a process
# holds: 5,000 in docs/performance.md. A process with larger rooms should
# raise it; one with small rooms loses nothing by it.
YOUNG_COLLECTION_AFTER = 10_000
# Young collections between two middle ones (CPython: 10): smaller, so that
# a middle collection's pause stays short with the larger young generation.
MIDDLE_COLLECTION_AFTER = 5
# Middle collections between two full ones (CPython: 10, with the young
# generation at 700): one full collection per about 700,000 allocations
# kept, as with 700 x 10 x 100 before the young generation grew.
FULL_COLLECTION_AFTER = 14


def tune_for_long_lived_connections() -> None:
    """Freeze what startup made and set the thresholds; call once the app is built."""
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_AFTER, MIDDLE_COLLECTION_AFTER, FULL_COLLECTION_AFTER)
