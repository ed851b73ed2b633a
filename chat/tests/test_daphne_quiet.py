"""chat.daphne_quiet: autobahn's debug-line arguments made only for a line written."""

from __future__ import annotations

import pprint
import sys

import autobahn.twisted.websocket
import autobahn.util
import autobahn.websocket.protocol
import pytest
from autobahn.util import hltype, hlval

from chat import daphne_quiet
from chat.daphne_quiet import Deferred, deferring


def test_a_deferred_argument_reads_as_the_text_it_stands_for():
    value = Deferred(hlval, 42, color="green")
    assert f"{value}" == str(value) == repr(value) == hlval(42, color="green")
    # txaio formats a line as str.format does, with the arguments by name.
    template = "sent {n} bytes"
    assert template.format(n=value) == f"sent {hlval(42, color='green')} bytes"
    assert f"{deferring(hltype)(test_a_deferred_argument_reads_as_the_text_it_stands_for)}" == (
        hltype(test_a_deferred_argument_reads_as_the_text_it_stands_for)
    )


def test_nothing_is_worked_out_until_the_line_is_formatted():
    made = []

    def colour(text: str) -> str:
        made.append(text)
        return f"<{text}>"

    argument = deferring(colour)("peer")
    assert made == []
    assert f"{argument}" == "<peer>" and made == ["peer"]


@pytest.fixture
def autobahn_names(monkeypatch):
    """autobahn's own functions under the names install() replaces, for this test only.

    The suite's process has Daphne's modules loaded, so loading the ASGI
    application installed the deferrals already.
    """
    originals = {"pformat": pprint.pformat, **vars(autobahn.util)}
    for module_name, names in daphne_quiet.DEFERRED.items():
        for name in names:
            monkeypatch.setattr(sys.modules[module_name], name, originals[name])


def test_under_daphne_autobahn_defers_its_log_arguments_once(autobahn_names, monkeypatch):
    monkeypatch.setattr(daphne_quiet, "under_daphne", lambda: True)
    daphne_quiet.install()
    daphne_quiet.install()  # the autoreloader, or a test, loads the ASGI app again
    for module in (autobahn.websocket.protocol, autobahn.twisted.websocket):
        assert isinstance(module.hlval(7), Deferred)
        assert module.hlval.deferred is hlval  # not a deferral of a deferral
        assert str(module.hltype(hlval)) == hltype(hlval)
    options = [("maxFramePayloadSize", 65536, "WebSocketServerFactory")]
    assert isinstance(autobahn.websocket.protocol.pformat(options), Deferred)
    assert f"{autobahn.websocket.protocol.pformat(options)}" == pprint.pformat(options)
    # The one caller that needs the text itself still gets text.
    timings = autobahn.websocket.protocol.Timings()
    timings.track("open")
    assert str(timings) == pprint.pformat(timings._timings)


def test_under_another_server_autobahn_is_left_alone(autobahn_names, monkeypatch):
    monkeypatch.setattr(daphne_quiet, "under_daphne", lambda: False)
    daphne_quiet.install()
    assert autobahn.websocket.protocol.hlval is hlval
