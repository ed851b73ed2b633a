"""Django's autoreloader, with a SIGTERM that lets the server drain (chat's `runserver`).

`runserver` runs as two processes: a parent that restarts a child whenever
the child exits with 3 (a file changed), and the child, whose main thread
watches the files while another thread serves. Django makes SIGTERM exit
both at once: the parent kills the child with SIGKILL on its way out
(`subprocess.run`) and the child exits from its main thread, ending the
server's thread wherever it was. Here the parent passes SIGTERM on to the
child and waits for it, and the child's main thread asks the server to stop
(Daphne drains then, chat.daphne_drain) and waits for its thread to end
before it exits 0. SIGINT (CONTROL-C) still works as in Django.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from django.utils import autoreload

logger = logging.getLogger(__name__)

# Draining takes at most 5 s (chat.drain.CLOSE_SECONDS), and SPEC lets the
# whole process take 10: past this, the child gives up waiting for its
# server and exits 1.
SERVER_STOP_SECONDS = 9.0
# The child's exit status that asks the parent for a new child (Django's).
RELOAD_STATUS = 3


def in_child() -> bool:
    """Whether this process is the autoreloader's child (the one that serves)."""
    return os.environ.get(autoreload.DJANGO_AUTORELOAD_ENV) == "true"


class Parent:
    """The autoreloader's parent: start the child again until it exits for good."""

    def __init__(self) -> None:
        self.child: subprocess.Popen | None = None
        self.stopping = False

    def run(self) -> int:
        """Run children until one exits other than to reload: its status."""
        signal.signal(signal.SIGTERM, self.forward)
        environ = {**os.environ, autoreload.DJANGO_AUTORELOAD_ENV: "true"}
        args = autoreload.get_child_arguments()
        while not self.stopping:
            self.child = subprocess.Popen(args, env=environ, close_fds=False)
            if self.stopping:
                # SIGTERM came while the child was being started.
                self.child.send_signal(signal.SIGTERM)
            try:
                status = self.child.wait()
            except KeyboardInterrupt:
                # As Django's parent: CONTROL-C reached the child too, which
                # Popen.wait gave a moment to exit.
                self.child.kill()
                self.child.wait()
                raise
            if status != RELOAD_STATUS:
                return status
        return 0

    def forward(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM: pass it on to the child, whose status becomes this process's."""
        self.stopping = True
        if self.child is not None:
            self.child.send_signal(signal.SIGTERM)


class Child:
    """The autoreloader's child: serve in a thread, watch files in the main thread."""

    def __init__(self, serve: Callable[..., None], stop: Callable[[], None]) -> None:
        self.serve = serve
        self.stop = stop
        self.stopping = False
        self.served = threading.Event()

    def run(self, **options: Any) -> None:
        """Serve until a file changes (exit 3) or SIGTERM stops the server (exit 0)."""
        signal.signal(signal.SIGTERM, self.terminate)
        reloader = autoreload.get_reloader()
        logger.info("Watching for file changes with %s", type(reloader).__name__)
        autoreload.start_django(reloader, self.serving, **options)

    def serving(self, **options: Any) -> None:
        """The server's thread (Django's "django-main-thread")."""
        try:
            self.serve(**options)
        finally:
            self.served.set()

    def terminate(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM (more than one if the process manager signals the whole group).

        A second one runs this handler again inside the first, wherever the
        first was, even halfway through handing the stop to the server's
        loop (before its wake-up was written): waiting there would hold the
        stop back until the wait ran out. So only the first one stops the
        server and waits for it; the others return to it at once.
        """
        if self.stopping:
            return
        self.stopping = True
        self.stop()
        if not self.served.wait(SERVER_STOP_SECONDS):
            logger.error("the server did not stop within %g s", SERVER_STOP_SECONDS)
            sys.exit(1)
        sys.exit(0)
