"""Make Daphne drain on SIGTERM (chat.drain) instead of dropping every connection.

Daphne stops its Twisted reactor on SIGTERM (`daphne`, and `runserver
--noreload`; chat's `runserver` stops it in the autoreloader's child), and
the reactor's "before shutdown" trigger, `Server.kill_all_applications`,
cancels every application at once: each client saw its TCP connection
drop (1006) and waited for its backoff. Wrapped here, the trigger first
stops listening, so a load balancer sends new connections elsewhere, then
drains (every WebSocket frees its name and closes with 1012) and waits for
the connections to end, at most chat.drain.CLOSE_SECONDS; only then does
Daphne's own trigger cancel what is left. Twisted waits for the Deferred
this returns before it goes on to stop. Under any other server it does
nothing.
"""

from __future__ import annotations

import asyncio
import logging

from channels.layers import get_channel_layer

from . import drain
from .daphne_patch import under_daphne, wrap_once

logger = logging.getLogger(__name__)


def install() -> None:
    if not under_daphne():
        return
    from daphne.server import Server

    wrap_once(Server, "kill_all_applications", _drain_first)


def stop_from_thread() -> None:
    """Stop Daphne from another thread, as its SIGTERM handler would: it drains first."""
    from twisted.internet import reactor

    reactor.callFromThread(_stop, reactor)


def _stop(reactor) -> None:
    from twisted.internet.error import ReactorNotRunning

    try:
        reactor.stop()
    except ReactorNotRunning:
        pass  # stopping already


def _drain_first(original):
    from twisted.internet import defer, reactor
    from twisted.internet.interfaces import IListeningPort

    def kill_all_applications(self):
        # In a Daphne process every listening port is Daphne's own.
        for reader in reactor.getReaders():
            if IListeningPort.providedBy(reader):
                reader.stopListening()
        pending = [
            details["application_instance"]
            for details in self.connections.values()
            if "application_instance" in details and not details["application_instance"].done()
        ]
        drained = defer.Deferred.fromFuture(
            asyncio.ensure_future(drain.drain(get_channel_layer(), pending))
        )
        drained.addErrback(_report)
        drained.addCallback(lambda _: original(self))
        return drained

    return kill_all_applications


def _report(failure) -> None:
    """The drain failed: say why; Daphne's own shutdown goes on (the process must stop)."""
    logger.error(
        "draining failed, the remaining connections are dropped",
        exc_info=(failure.type, failure.value, failure.getTracebackObject()),
    )
