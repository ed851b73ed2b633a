"""Each process closes its own connections that a new ban, kick or closed room reaches.

Moderation travels through the database: admin and the command line write
bans, kicks and rooms, and every process reads them with its live settings
snapshot (chat.conf), which it reloads every 2 s. A snapshot is otherwise
reloaded only when a frame needs it, and a room where nobody talks must
still be closed, so while a process has connections its watch reads the
snapshot every WATCH_SECONDS (a reload when it is stale, nothing otherwise).

When a reload brings news that may close connections (a new ban, a room
that closed, or kicks nobody here has seen), the watch sends one
`chat.moderate` event to every channel of this process through its channel
layer (`notify_all`), and each connection asks chat.moderation.verdicts
whether it is reached. The process keeps no list of its connections: the
layer already knows its channels, and a connection knows its own room, name
and address.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError

from .. import events
from ..conf import REFRESH_SECONDS, ChatConfig, get_config
from ..redis.loops import PerLoop
from . import verdicts

logger = logging.getLogger(__name__)

# Half the reload period: a change is in a snapshot at most 2 s after it was
# saved, and seen here at most 1 s after that; SPEC allows 5 s in all.
WATCH_SECONDS = REFRESH_SECONDS / 2


@dataclass(eq=False)
class _Watching:
    """One event loop's watch: how many connections it serves, and its task."""

    connections: int = 0
    task: asyncio.Task[None] | None = None
    warned: bool = False


class ModerationWatch:
    """Runs while the process has connections; tells them when moderation may reach them."""

    def __init__(self, *, interval: float = WATCH_SECONDS) -> None:
        self.interval = interval
        self._state: PerLoop[_Watching] = PerLoop(lambda loop: _Watching())

    def opened(self, layer: Any) -> None:
        """A connection of this process was accepted: watch for it (from its event loop)."""
        state = self._state.get()
        state.connections += 1
        if state.task is None or state.task.done():
            state.task = asyncio.get_running_loop().create_task(
                self._watch(state, layer), name="chat-moderation-watch"
            )

    def closed(self) -> None:
        """A connection that `opened` ended; the last one stops the watch."""
        state = self._state.get()
        state.connections = max(0, state.connections - 1)
        if state.connections == 0 and state.task is not None:
            state.task.cancel()
            state.task = None

    async def _watch(self, state: _Watching, layer: Any) -> None:
        previous: ChatConfig | None = None
        seen: list[int] = []
        while True:
            try:
                # On time: frames may use the snapshot while it reloads, the watch may not.
                config = await get_config(wait=True)
                if previous is None:
                    # What the first connection was checked against when it
                    # was accepted: the kicks in it were made before it joined.
                    previous, seen = config, [kick.id for kick in config.kicks]
                elif config is not previous:
                    kicks = verdicts.new_kicks(config, seen)
                    news = bool(kicks) or verdicts.tightened(previous, config)
                    previous, seen = config, [kick.id for kick in config.kicks]
                    if news:
                        event = {"type": events.MODERATE, "kicks": [k.as_event() for k in kicks]}
                        self._tell(state, layer, event)
            except asyncio.CancelledError:
                raise
            except DatabaseError as error:
                logger.warning("moderation watch: the settings could not be read: %s", error)
            except Exception:
                logger.exception("moderation watch failed; it goes on")
            await asyncio.sleep(self.interval)

    def _tell(self, state: _Watching, layer: Any, event: dict[str, Any]) -> None:
        notify_all = getattr(layer, "notify_all", None)
        if notify_all is None:
            if not state.warned:
                state.warned = True
                logger.warning(
                    "the channel layer %s cannot reach every connection of this process: "
                    "bans, kicks and closed rooms apply to new connections and joins only "
                    "(use chat.layers.memory or chat.layers.redis)",
                    type(layer).__name__,
                )
            return
        reached = notify_all(event)
        logger.info("moderation: told %d connections to check themselves", reached)


_watch = ModerationWatch()


def connection_opened(layer: Any) -> None:
    """Count a connection of this process in, starting the watch with the first."""
    _watch.opened(layer)


def connection_closed() -> None:
    """Count a connection out (exactly once per `connection_opened`)."""
    _watch.closed()
