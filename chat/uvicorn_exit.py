"""Make uvicorn exit with status 0 once it has shut down on SIGTERM.

uvicorn drains by itself on SIGTERM: it stops listening, closes every
WebSocket with 1012 and hands each application `websocket.disconnect`
(the consumer frees its name on it), then waits for the applications to
end. Since 0.29 it then raises the signal again with the handler that was
in place before it started ("cooperative signal handling"), so with no
handler of ours the process died of SIGTERM (status 143) after a clean
shutdown, which a process manager or a deploy script reads as a failure.
The handler installed here is that earlier handler: it runs only after
uvicorn's shutdown, and ends the process with status 0.

Installed when the ASGI application is imported, which the uvicorn command
does before it takes the signals over. Nothing is installed where uvicorn
is not loaded, outside the main thread, or over a handler that is already there
(uvicorn's own in a `--workers` or `--reload` child, which imports the
application after taking the signals).
"""

from __future__ import annotations

import signal
import sys
import threading


def install() -> None:
    # Not daphne_patch.under_daphne: the "daphne" app imports daphne.server
    # in every process, uvicorn's included.
    if "uvicorn.server" not in sys.modules:
        return
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return
    signal.signal(signal.SIGTERM, _exit_cleanly)


def _exit_cleanly(signum: int, frame: object) -> None:
    """SIGTERM, handed back by uvicorn after its shutdown (or before it started): exit 0."""
    raise SystemExit(0)
