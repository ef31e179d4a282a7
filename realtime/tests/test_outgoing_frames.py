"""daphne's frames: dropped after a close, counted before a send (realtime/outgoing_frames.py).

End to end, the race is a client leaving while a stream's messages flow: a
few in hundreds of leaves logged "Exception inside application". Here, on
daphne's protocol object in each state. A client that reads nothing is
dropped end to end in tests/test_e2e_slow_clients.py; here, how the bytes
waiting for it are counted, on Twisted's own buffer.
"""

import gc
import logging

import pytest
from daphne.ws_protocol import WebSocketProtocol
from twisted.internet.abstract import FileDescriptor
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactor, StringTransport
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory

from realtime.outgoing_frames import Backlogs, guard_outgoing_frames, unsent_bytes


@pytest.fixture
def protocol(monkeypatch):
    guard_outgoing_frames()
    protocol = WebSocketProtocol()
    protocol.client_addr, protocol.sent = None, []
    monkeypatch.setattr(
        protocol, "sendMessage", lambda payload, binary: protocol.sent.append(payload)
    )
    return protocol


@pytest.mark.parametrize("state", ["STATE_CLOSING", "STATE_CLOSED"])
def test_a_frame_to_a_closed_socket_is_dropped(protocol, state):
    protocol.state = getattr(WebSocketProtocol, state)
    protocol.serverSend('{"type":"pong"}')  # autobahn raised Disconnected
    assert protocol.sent == []


def test_a_frame_to_an_open_socket_is_sent(protocol):
    protocol.state = WebSocketProtocol.STATE_OPEN
    protocol.serverSend('{"type":"pong"}')
    assert protocol.sent == [b'{"type":"pong"}']


def test_the_patch_is_applied_once():
    guard_outgoing_frames()
    patched = WebSocketProtocol.serverSend
    guard_outgoing_frames()
    assert WebSocketProtocol.serverSend is patched


def connection_holding(size: int) -> FileDescriptor:
    """Twisted's buffered connection (tcp.Connection's base) after a write of
    `size` bytes that the reactor has not sent yet."""
    connection = FileDescriptor(reactor=MemoryReactor())
    connection.connected = True
    connection.write(b"x" * size)
    return connection


def test_the_bytes_waiting_in_twisteds_buffer_are_counted():
    connection = connection_holding(1000)
    assert unsent_bytes(connection) == 1000
    connection.write(b"y" * 24)
    assert unsent_bytes(connection) == 1024


def test_they_are_counted_below_a_wrapping_protocol_as_tls_is():
    wrapper = ProtocolWrapper(WrappingFactory(Factory()), Protocol())
    wrapper.makeConnection(connection_holding(500))
    assert unsent_bytes(wrapper) == 500


@pytest.mark.parametrize("transport", [None, StringTransport()])
def test_without_twisteds_buffer_nothing_is_counted(transport):
    assert unsent_bytes(transport) is None


class SlowSocket:
    """What `Backlogs` uses of daphne's protocol: its TCP connection holding
    `waiting` unsent bytes, its state, and the abort."""

    STATE_OPEN, STATE_CLOSED = 3, 4

    def __init__(self, waiting: int) -> None:
        self.transport = connection_holding(waiting)
        self.state, self.client_addr, self.aborted = self.STATE_OPEN, None, False

    def dropConnection(self, abort: bool = False) -> None:
        self.aborted, self.state = abort, self.STATE_CLOSED


def admitted(backlogs: Backlogs, socket: SlowSocket, frame: int = 100) -> bool:
    """`backlogs.admit` as daphne's send asks it: with the bytes waiting now."""
    return backlogs.admit(socket, unsent_bytes(socket.transport), frame)


def test_a_socket_past_its_own_limit_is_dropped():
    backlogs = Backlogs(per_socket=1000, per_process=10_000)
    slow = SlowSocket(950)
    assert not admitted(backlogs, slow)
    assert slow.aborted and backlogs.total == 0


def test_past_the_process_limit_the_socket_with_most_waiting_goes_first(caplog):
    backlogs = Backlogs(per_socket=1000, per_process=1500)
    slowest, slow, sending = SlowSocket(800), SlowSocket(400), SlowSocket(500)
    assert admitted(backlogs, slowest) and admitted(backlogs, slow)
    assert backlogs.total == 1400  # each with its frame
    # Its frame makes 2,000; counted again (the frames sent drained), 1,800:
    # the slowest goes.
    assert admitted(backlogs, sending)
    assert slowest.aborted and not slow.aborted and not sending.aborted
    assert backlogs.total == 1000
    assert (
        "800 bytes of frames unread; the most of 1800 held by all its sockets "
        "(AUTHSOCKET_MAX_PROCESS_SEND_BUFFER_BYTES 1500)"
    ) in caplog.text
    assert all(r.levelno == logging.WARNING for r in caplog.records)


def test_the_socket_sending_is_dropped_when_it_holds_the_most():
    backlogs = Backlogs(per_socket=1000, per_process=1200)
    other, sending = SlowSocket(500), SlowSocket(800)
    assert admitted(backlogs, other)
    assert not admitted(backlogs, sending)
    assert sending.aborted and not other.aborted


def test_bytes_that_drained_since_they_were_counted_drop_nobody():
    backlogs = Backlogs(per_socket=1000, per_process=1500)
    was_slow, sending = SlowSocket(900), SlowSocket(600)
    assert admitted(backlogs, was_slow)
    was_slow.transport = connection_holding(0)  # its client read it all since
    assert admitted(backlogs, sending)
    assert not was_slow.aborted and not sending.aborted
    assert backlogs.total == 700


def test_a_socket_that_keeps_up_holds_no_entry_and_a_closed_one_is_forgotten():
    backlogs = Backlogs(per_socket=1000, per_process=1500)
    keeping_up, slow = SlowSocket(0), SlowSocket(300)
    assert admitted(backlogs, keeping_up) and admitted(backlogs, slow)
    assert list(backlogs.waiting) == [slow]
    slow.transport = connection_holding(0)
    assert admitted(backlogs, slow)  # caught up: forgotten
    assert len(backlogs.waiting) == 0 and backlogs.total == 0
    closed = SlowSocket(300)
    assert admitted(backlogs, closed)
    del closed
    gc.collect()
    assert len(backlogs.waiting) == 0
