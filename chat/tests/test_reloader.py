"""chat.reloader.Child: SIGTERM in the autoreloader's child, however many arrive."""

from __future__ import annotations

import signal
import threading

import pytest

from chat import reloader


def test_a_second_sigterm_inside_the_first_leaves_the_stop_to_it(monkeypatch):
    """A process manager signals the group: the parent forwards one more to the child.

    The second handler runs inside the first, here halfway through the
    stop; it must return at once so that the stop reaches the server.
    """
    monkeypatch.setattr(reloader, "SERVER_STOP_SECONDS", 2.0)
    steps: list[str] = []
    child: reloader.Child

    def stop() -> None:
        steps.append("stop begins")
        child.terminate(signal.SIGTERM, None)  # the second SIGTERM, mid-stop
        steps.append("stop handed to the server")
        # The server's thread ends once it has the stop.
        threading.Timer(0.05, child.served.set).start()

    child = reloader.Child(serve=lambda **options: None, stop=stop)
    with pytest.raises(SystemExit) as exited:
        child.terminate(signal.SIGTERM, None)
    assert exited.value.code == 0
    assert steps == ["stop begins", "stop handed to the server"]


def test_a_server_that_does_not_stop_in_time_exits_1(monkeypatch):
    monkeypatch.setattr(reloader, "SERVER_STOP_SECONDS", 0.05)
    child = reloader.Child(serve=lambda **options: None, stop=lambda: None)
    with pytest.raises(SystemExit) as exited:
        child.terminate(signal.SIGTERM, None)
    assert exited.value.code == 1
