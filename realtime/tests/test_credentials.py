"""The four handshake transports of docs/protocol.md §4.1, and every malformed case.

The first credential PRESENT is the only one considered; a broken one is
refused even when a valid one follows (no fall-through).
"""

import logging

import pytest

from realtime.credentials import BadCredential, credential_of
from realtime.protocol import SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX, Transport
from realtime.tests.sockets import db, refused, welcomed

pytestmark = pytest.mark.django_db(transaction=True)


def token_protocol(token: str) -> str:
    return f"{TOKEN_SUBPROTOCOL_PREFIX}{token}"


@pytest.fixture
async def tokens(alice, open_session):
    return await db(open_session, alice)


@pytest.fixture
async def ticket(tokens):
    from accounts.services import ticket_issue

    value, _ = await db(
        ticket_issue, session=tokens.session, access_expires_at=tokens.access_expires_at
    )
    return value


async def test_subprotocol_transport_selects_exactly_authsocket_v1(ws, tokens):
    communicator = ws(subprotocols=[SUBPROTOCOL, token_protocol(tokens.access)])
    connected, subprotocol = await communicator.connect(timeout=5)
    assert connected
    assert subprotocol == SUBPROTOCOL  # never the token
    frame = await communicator.receive_json_from(timeout=5)
    assert frame["session"] == tokens.session.sid
    await communicator.disconnect()


async def test_authorization_header_transport(ws, tokens):
    communicator = ws(headers=[("authorization", f"Bearer {tokens.access}")])
    assert (await welcomed(communicator))["session"] == tokens.session.sid
    await communicator.disconnect()


async def test_ticket_transport(ws, tokens, ticket):
    communicator = ws(f"ticket={ticket}")
    frame = await welcomed(communicator)
    assert frame["session"] == tokens.session.sid
    assert frame["expires_at"] == tokens.access_expires_at  # dies with its token
    await communicator.disconnect()


async def test_query_token_transport(ws, tokens):
    communicator = ws(f"token={tokens.access}")
    assert (await welcomed(communicator))["session"] == tokens.session.sid
    await communicator.disconnect()


async def test_other_transports_select_authsocket_v1_when_offered(ws, tokens):
    communicator = ws(f"token={tokens.access}", subprotocols=[SUBPROTOCOL])
    connected, subprotocol = await communicator.connect(timeout=5)
    assert (connected, subprotocol) == (True, SUBPROTOCOL)
    await communicator.disconnect()


MALFORMED = {
    "two token subprotocols": lambda t, k: {
        "subprotocols": [SUBPROTOCOL, token_protocol(t), token_protocol(t)]
    },
    "token subprotocol without authsocket.v1": lambda t, k: {
        "subprotocols": [token_protocol(t)]
    },
    "only authsocket.v1 is no credential": lambda t, k: {"subprotocols": [SUBPROTOCOL]},
    "empty token subprotocol": lambda t, k: {
        "subprotocols": [SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX]
    },
    "Basic authorization": lambda t, k: {
        "headers": [("authorization", "Basic YWxpY2U6cHc=")]
    },
    "Token scheme authorization": lambda t, k: {
        "headers": [("authorization", f"Token {t}")]
    },
    "no token after Bearer": lambda t, k: {"headers": [("authorization", "Bearer ")]},
    "two Authorization headers": lambda t, k: {
        "headers": [("authorization", f"Bearer {t}"), ("authorization", f"Bearer {t}")]
    },
    "repeated ticket": lambda t, k: {"query": f"ticket={k}&ticket={k}"},
    "repeated token": lambda t, k: {"query": f"token={t}&token={t}"},
    "repeated token after a ticket": lambda t, k: {
        "query": f"ticket={k}&token={t}&token={t}"
    },
    # First present wins, no fall-through to the valid credential behind it:
    "bad subprotocol token before a good ?token=": lambda t, k: {
        "subprotocols": [SUBPROTOCOL, token_protocol("garbage")],
        "query": f"token={t}",
    },
    "bad subprotocol token before a good header": lambda t, k: {
        "subprotocols": [SUBPROTOCOL, token_protocol("garbage")],
        "headers": [("authorization", f"Bearer {t}")],
    },
    "bad header before a good ticket": lambda t, k: {
        "headers": [("authorization", "Bearer garbage")],
        "query": f"ticket={k}",
    },
    "bad ticket before a good ?token=": lambda t, k: {
        "query": f"ticket=garbage&token={t}"
    },
}


@pytest.mark.parametrize("case", MALFORMED)
async def test_malformed_transport_is_refused(ws, tokens, ticket, case, caplog):
    with caplog.at_level(logging.INFO):
        assert await refused(ws(**MALFORMED[case](tokens.access, ticket)))
    reasons = [
        r.getMessage() for r in caplog.records if "websocket refused" in r.getMessage()
    ]
    assert len(reasons) == 1  # the reason is logged, once
    assert tokens.access not in caplog.text and ticket not in caplog.text


@pytest.mark.parametrize("scheme", ["Basic YWxpY2U6cHc=", "Token abc", "Digest x=1"])
async def test_an_authorization_header_of_another_scheme_is_no_credential(
    ws, tokens, ticket, scheme
):
    """A proxy's HTTP authentication is not the socket's: the ticket or
    token behind it is the credential (a browser on a site behind Basic
    auth sends that header with every handshake)."""
    header = [("authorization", scheme)]
    for query in (f"ticket={ticket}", f"token={tokens.access}"):
        communicator = ws(query, headers=header)
        assert (await welcomed(communicator))["session"] == tokens.session.sid
        await communicator.disconnect()


async def test_ticket_not_consumed_by_a_refused_earlier_transport(ws, tokens, ticket):
    """No fall-through means the ticket behind a bad header is never even read."""
    assert await refused(
        ws(f"ticket={ticket}", headers=[("authorization", "Bearer garbage")])
    )
    communicator = ws(f"ticket={ticket}")
    await welcomed(communicator)
    await communicator.disconnect()


def scope(query: bytes = b"", headers=(), subprotocols=()):
    return {
        "query_string": query,
        "headers": list(headers),
        "subprotocols": list(subprotocols),
    }


@pytest.mark.parametrize(
    "handshake, transport",
    [
        (
            scope(subprotocols=[SUBPROTOCOL, "authsocket.token.x"]),
            Transport.SUBPROTOCOL,
        ),
        (scope(headers=[(b"authorization", b"bearer x")]), Transport.HEADER),
        (scope(b"ticket=x&token=y"), Transport.TICKET),
        (scope(b"token=y"), Transport.QUERY_TOKEN),
        (scope(b"ticket=x", [(b"authorization", b"Basic x")]), Transport.TICKET),
        (
            scope(b"token=y", [(b"authorization", b"Bearer x")], [SUBPROTOCOL]),
            Transport.HEADER,
        ),
    ],
)
def test_transports_are_read_in_protocol_order(handshake, transport):
    assert credential_of(handshake).transport is transport


def test_query_token_switched_off_is_a_bad_credential(settings):
    settings.AUTHSOCKET_QUERY_TOKEN = False
    with pytest.raises(BadCredential):
        credential_of(scope(b"token=y"))
    assert credential_of(scope(b"ticket=x")).transport is Transport.TICKET
