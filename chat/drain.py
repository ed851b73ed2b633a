"""Draining a process that is stopping: every WebSocket closed with 1012, every name freed at once.

A process manager stops a process with SIGTERM, one process after another
at a rolling restart. The server's hook (chat.daphne_drain, for `daphne` and
`runserver`) stops listening, then calls `drain`: from then on `draining()`
holds, so /healthz answers 503 and a handshake that still arrives is closed
with 1012; every connection of the process hears `chat.drain` through its
channel layer's `notify_all`, frees its name (the room hears the leave,
through Redis on every other process) and closes with 1012, which the page
answers by reconnecting within a second, to a process that is not stopping.
The server waits until they have all ended, or CLOSE_SECONDS, and then
cancels what is left (whose names `dispatch_ended` frees as it ends).
uvicorn does the same by itself (chat.uvicorn_exit).

The process keeps no list of its connections: the layer knows its channels
(as for chat.moderation.watch), and the server its application instances.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from typing import Any

from . import events

logger = logging.getLogger(__name__)

# SPEC: every WebSocket is closed with 1012 within 5 s of the SIGTERM, and
# the process exits within 10 s. A connection closes as soon as it has
# freed its name (one Redis round trip), so this is only the bound for one
# whose client does not answer the close; the server then cancels it.
CLOSE_SECONDS = 5.0


class Drain:
    """Whether this process is draining. Once begun, a drain lasts until the process exits."""

    def __init__(self) -> None:
        self.begun = False

    def begin(self, layer: Any) -> int:
        """Start draining: refuse new connections, tell every connection; how many were told."""
        self.begun = True
        notify_all = getattr(layer, "notify_all", None)
        if notify_all is None:
            logger.warning(
                "the channel layer %s cannot reach every connection of this process: "
                "they are dropped when the server stops instead of closed with 1012 "
                "(use chat.layers.memory or chat.layers.redis)",
                type(layer).__name__,
            )
            return 0
        return notify_all({"type": events.DRAIN})


_drain = Drain()


def draining() -> bool:
    """Whether this process is stopping (new connections are refused with 1012)."""
    return _drain.begun


async def drain(layer: Any, pending: Collection[asyncio.Future[Any]]) -> int:
    """Drain this process and wait until `pending` (its connections) have ended, or CLOSE_SECONDS.

    The number still running at the deadline, for the server to cancel.
    """
    told = _drain.begin(layer)
    logger.info("draining: told %d connections to close with 1012", told)
    if not pending:
        return 0
    _, running = await asyncio.wait(pending, timeout=CLOSE_SECONDS)
    if running:
        logger.warning(
            "draining: %d connections still open after %g s are cancelled",
            len(running),
            CLOSE_SECONDS,
        )
    return len(running)
