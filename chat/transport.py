"""What a server raises when the chat sends on a socket that is gone already.

The server closes a socket itself (an oversized frame, a broken one, the
client's close, a lost connection) and tells the application with a
`websocket.disconnect` event; a consumer reads the room's events apart from
the client's (chat.dispatch), so a room message can reach a consumer between
the two. Sending it then raises: under uvicorn ASGI's OSError once the
connection is lost (`ClientDisconnected`), under Daphne autobahn's
`Disconnected` (a RuntimeError) as soon as its close has begun. The frame is
for nobody, and the disconnect event, next in line, ends the consumer.
"""

from __future__ import annotations

import functools

from .daphne_patch import under_daphne


@functools.cache
def send_errors() -> tuple[type[Exception], ...]:
    """The errors of a send on a gone socket, under the server running this process.

    Only asked once a send has raised: autobahn is imported under Daphne
    only, where it is loaded already (a quarter of a second to import).
    """
    if under_daphne():
        from autobahn.exception import Disconnected

        return (OSError, Disconnected)
    return (OSError,)
