"""What autobahn refuses by itself (end to end: tests/test_e2e_core.py and
tests/test_e2e_transport_limits.py, under plain daphne and authsocket.serve)."""

from types import SimpleNamespace

import pytest

from realtime.handshake_refusals import token_subprotocols


@pytest.mark.parametrize(
    ("offered", "count"),
    [
        ("authsocket.v1, authsocket.token.a, authsocket.token.a", 2),
        ("authsocket.token.a,authsocket.token.b,authsocket.v1", 2),
        ("authsocket.v1, authsocket.v1", 0),
        ("authsocket.token.a, authsocket.v1", 1),
    ],
)
def test_token_subprotocols_are_counted_however_they_are_spaced(offered, count):
    handshake = SimpleNamespace(http_headers={"sec-websocket-protocol": offered})
    assert token_subprotocols(handshake) == count


def test_a_handshake_refused_before_its_headers_were_read_offers_none():
    assert token_subprotocols(SimpleNamespace()) == 0
