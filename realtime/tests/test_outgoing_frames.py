"""daphne's frames: dropped after a close, counted before a send (realtime/outgoing_frames.py).

End to end, the race is a client leaving while a stream's messages flow: a
few in hundreds of leaves logged "Exception inside application". Here, on
daphne's protocol object in each state. A client that reads nothing is
dropped end to end in tests/test_e2e_slow_clients.py; here, how the bytes
waiting for it are counted, on Twisted's own buffer.
"""

import pytest
from daphne.ws_protocol import WebSocketProtocol
from twisted.internet.abstract import FileDescriptor
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactor, StringTransport
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory

from realtime.outgoing_frames import guard_outgoing_frames, unsent_bytes


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
