"""A frame sent to a WebSocket that has just closed is dropped (realtime/closed_sockets.py).

End to end, the race is a client leaving while a stream's messages flow: a
few in hundreds of leaves logged "Exception inside application". Here, on
daphne's protocol object in each state.
"""

import pytest
from daphne.ws_protocol import WebSocketProtocol

from realtime.closed_sockets import drop_sends_after_close


@pytest.fixture
def protocol(monkeypatch):
    drop_sends_after_close()
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
    drop_sends_after_close()
    patched = WebSocketProtocol.serverSend
    drop_sends_after_close()
    assert WebSocketProtocol.serverSend is patched
