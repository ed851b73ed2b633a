"""chat.daphne_writes: a frame goes on the socket at once when nothing waits before it.

Against a stand-in transport for each rule, then on a real Daphne process
with a member whose socket fills up: what the socket did not take is
buffered by Twisted, and the member, once it reads again, has every
message in order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest
from twisted.internet import main
from websockets.asyncio.client import connect as ws_connect

from chat.daphne_writes import _sending_at_once
from chat.testing import servers
from chat.testing.slow_client import joined_member
from chat.testing.wsclient import recv_type, send
from chat.tests.test_slow_readers import BIG, DEADLINE, listening


@dataclass
class Transport:
    """What the wrapper reads of Twisted's tcp.Server, and its socket."""

    takes: int | Exception = 1 << 30  # bytes the socket takes at once
    connected: bool = True
    disconnecting: bool = False
    _writeDisconnected: bool = False
    dataBuffer: bytes = b""
    _tempDataBuffer: list[bytes] = field(default_factory=list)
    sent: list[bytes] = field(default_factory=list)

    def writeSomeData(self, data: bytes) -> int | Exception:
        if isinstance(self.takes, Exception):
            return self.takes
        taken = data[: self.takes]
        self.sent.append(taken)
        return len(taken)


class TLSTransport(Transport):
    pass


class Protocol:
    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.send_queue: list = []
        self.buffered: list[tuple[bytes, bool, int | None]] = []


def send_data(protocol: Protocol, data: bytes, **options) -> None:
    def autobahns(self, data, sync=False, chopsize=None):
        self.buffered.append((data, sync, chopsize))

    _sending_at_once(autobahns, Transport)(protocol, data, **options)


def test_a_frame_with_nothing_before_it_goes_straight_to_the_socket():
    protocol = Protocol(Transport())
    send_data(protocol, b"frame")
    assert protocol.transport.sent == [b"frame"] and protocol.buffered == []


def test_what_the_socket_does_not_take_is_buffered_by_twisted():
    protocol = Protocol(Transport(takes=3))
    send_data(protocol, b"frame")
    assert protocol.transport.sent == [b"fra"]
    assert protocol.buffered == [(b"me", False, None)]


@pytest.mark.parametrize(
    ("transport", "options"),
    [
        (Transport(dataBuffer=b"earlier"), {}),
        (Transport(_tempDataBuffer=[b"earlier"]), {}),
        (Transport(disconnecting=True), {}),
        (Transport(connected=False), {}),
        (Transport(_writeDisconnected=True), {}),
        (TLSTransport(), {}),
        (Transport(), {"sync": True}),
        (Transport(), {"chopsize": 2}),
    ],
    ids=["buffered", "buffered-later", "closing", "closed", "half-closed", "tls", "sync", "chop"],
)
def test_otherwise_autobahns_own_path_runs(transport, options):
    protocol = Protocol(transport)
    send_data(protocol, b"frame", **options)
    assert transport.sent == []
    assert protocol.buffered == [(b"frame", options.get("sync", False), options.get("chopsize"))]


def test_a_frame_queued_by_autobahn_keeps_its_place():
    protocol = Protocol(Transport())
    protocol.send_queue.append((b"chopped", True))
    send_data(protocol, b"frame")
    assert protocol.transport.sent == [] and protocol.buffered == [(b"frame", False, None)]


def test_a_lost_connection_is_left_for_twisted_to_find():
    protocol = Protocol(Transport(takes=main.CONNECTION_LOST))
    send_data(protocol, b"frame")
    assert protocol.buffered == [(b"frame", False, None)]


@pytest.mark.server
async def test_under_daphne_a_member_whose_socket_filled_up_gets_everything_in_order(
    start_server, server_database
):
    servers.chat_settings(server_database, rate_limit_per_second=0)
    daphne = start_server("daphne")
    url = f"{daphne.ws_url}/websocket/ws_chat/writes"
    stalled, joined = await joined_member(url, "Stalled", timeout=DEADLINE)
    async with listening(url, "Listener") as listener, ws_connect(url) as sender:
        await send(sender, {"type": "join", "name": "Sender"})
        await recv_type(sender, "joined")
        # About 1 MiB: far more than the stalled member's socket buffers hold.
        count = 500
        for _ in range(count):
            await send(sender, {"message": BIG})
        await listener.until(lambda: len(listener.offsets()) == count, "the listener has all")
        deadline = time.monotonic() + DEADLINE
        while len(stalled.messages()) < count:
            assert time.monotonic() < deadline, f"{len(stalled.messages())} of {count}"
            await stalled.read_for(0.2)
        offsets = [frame["offset"] for frame in stalled.messages()]
        first = joined["offset"] + 1
        assert offsets == listener.offsets() == list(range(first, first + count))
        assert all(frame["message"] == BIG for frame in stalled.messages())
    stalled.close()
