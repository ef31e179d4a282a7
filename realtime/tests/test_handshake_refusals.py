"""What autobahn refuses by itself (end to end: tests/test_e2e_core.py and
tests/test_e2e_transport_limits.py, under plain daphne and authsocket.serve)."""

from types import SimpleNamespace

import pytest

from realtime.handshake_refusals import token_subprotocols, unusable_handshake


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


@pytest.mark.parametrize(
    ("headers", "extensions", "problem"),
    [
        ({"sec-websocket-protocol": "authsocket.v1, \xe9"}, [], "not ASCII"),
        ({}, [("permessage-deflate", {"foo": [True]})], "unusable"),
        ({}, [("permessage-deflate", {"client_max_window_bits": ["99"]})], "unusable"),
        ({}, [("permessage-deflate", {})], None),
        ({}, [("x-webkit-deflate-frame", {"foo": [True]})], None),  # not autobahn's
        ({"sec-websocket-protocol": "authsocket.v1"}, [], None),
    ],
)
def test_what_daphne_would_trip_on_after_the_application_ran_is_named(
    headers, extensions, problem
):
    found = unusable_handshake(headers, extensions)
    assert (found is None) if problem is None else (problem in found)
