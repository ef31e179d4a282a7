"""End to end on a real daphne: HTTP login, then an authenticated socket."""

import json

import pytest
import websockets

from tests.http import call, login

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


async def test_login_then_socket_gets_welcome_and_pong(daphne_server):
    tokens = login(daphne_server.http, "alice", "authsocket-demo")
    async with websockets.connect(
        f"{daphne_server.ws}?token={tokens['access']}", open_timeout=10
    ) as socket:
        welcome = json.loads(await socket.recv())
        assert welcome["type"] == "welcome"
        assert welcome["user"] == tokens["user"]
        await socket.send(json.dumps({"type": "ping"}))
        assert json.loads(await socket.recv()) == {"type": "pong"}


async def test_bad_token_is_refused_with_http_403(daphne_server):
    with pytest.raises(websockets.InvalidStatus) as info:
        async with websockets.connect(
            f"{daphne_server.ws}?token=not-a-token", open_timeout=10
        ):
            pass
    assert info.value.response.status_code == 403


async def test_logout_makes_access_token_useless_at_the_handshake(daphne_server):
    tokens = login(daphne_server.http, "bob", "authsocket-demo")
    status, _, _ = call(
        "POST", f"{daphne_server.http}/api/auth/logout", token=tokens["access"]
    )
    assert status == 204
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(
            f"{daphne_server.ws}?token={tokens['access']}", open_timeout=10
        ):
            pass
    assert refused.value.response.status_code == 403


async def test_one_token_offered_twice_as_subprotocol_is_refused_403_unquoted(
    daphne_server,
):
    """Plain daphne: autobahn refuses a repeated subprotocol before the
    application, with 400 and a status line that quoted the token."""
    token = login(daphne_server.http, "carol", "authsocket-demo")["access"]
    offer = ["authsocket.v1", f"authsocket.token.{token}", f"authsocket.token.{token}"]
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(
            daphne_server.ws, subprotocols=offer, open_timeout=10
        ):
            pass
    response = refused.value.response
    assert (response.status_code, response.reason_phrase) == (403, "Forbidden")
    assert token not in daphne_server.logs()
