"""A handshake whose client is gone before accept is not counted accepted.

daphne queues `websocket.disconnect` when the connection ends during the
handshake (its `--websocket_connect_timeout`, or the client leaving), but
the application reads it only once its connect handler returns: an
application that accepts afterwards had its handshake counted `accepted`
and a socket counted open, for a client daphne had already let go
(realtime/socket_metrics.py). The consumer here holds its handshake in
`socket_allowed()` until the test lets it go; the real daphne case is
tests/test_e2e_handshake_timeout.py.
"""

import asyncio

import pytest
from channels.testing import WebsocketCommunicator
from django.urls import re_path

from realtime.base_consumer import AuthenticatedConsumer
from realtime.routing import websocket_application, websocket_routes
from realtime.tests.conftest import TIMEOUT
from tests.metrics import Delta, value

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


class Hold:
    """Where the held handshake is: inside `socket_allowed()`, and let go."""

    def __init__(self) -> None:
        self.waiting = asyncio.Event()
        self.release = asyncio.Event()


class HeldConsumer(AuthenticatedConsumer):
    hold: Hold  # set by the test, on its own event loop

    async def socket_allowed(self) -> bool:
        self.hold.waiting.set()
        await asyncio.wait_for(self.hold.release.wait(), TIMEOUT)
        return True


def handshakes(outcome: str, reason: str) -> Delta:
    return Delta(
        "authsocket_handshakes_total", outcome=outcome, reason=reason, transport="query"
    )


@pytest.fixture
def held(alice, open_session, monkeypatch):
    """`(communicator, hold)`: a handshake on /ws/held/ that waits to be let go."""
    hold = Hold()
    monkeypatch.setattr(HeldConsumer, "hold", hold, raising=False)
    application = websocket_application(
        websocket_routes(re_path(r"^ws/held/$", HeldConsumer.as_asgi()))
    )
    access = open_session(alice).access
    return WebsocketCommunicator(application, f"/ws/held/?token={access}"), hold


async def test_an_accept_after_the_client_left_counts_as_abandoned(held):
    communicator, hold = held
    open_before = value("authsocket_open_sockets")
    await communicator.send_input({"type": "websocket.connect"})
    await asyncio.wait_for(hold.waiting.wait(), TIMEOUT)
    # The connection ends while the application is still deciding.
    await communicator.send_input({"type": "websocket.disconnect", "code": 1006})
    with (
        handshakes("accepted", "none") as accepted,
        handshakes("refused", "abandoned") as abandoned,
    ):
        hold.release.set()
        # The application accepts, welcomes nobody, reads its disconnect, ends.
        accept = await communicator.receive_output(TIMEOUT)
        assert accept["type"] == "websocket.accept"
        await communicator.wait(TIMEOUT)
    assert (accepted.value, abandoned.value) == (0, 1)
    assert value("authsocket_open_sockets") == open_before


async def test_an_accept_while_the_client_waits_counts_as_accepted(held):
    communicator, hold = held
    with (
        handshakes("accepted", "none") as accepted,
        handshakes("refused", "abandoned") as abandoned,
    ):
        connecting = asyncio.ensure_future(communicator.connect(TIMEOUT))
        await asyncio.wait_for(hold.waiting.wait(), TIMEOUT)
        hold.release.set()
        assert (await connecting)[0]
        welcome = await communicator.receive_json_from(TIMEOUT)
        assert welcome["type"] == "welcome"
        # Frames after the handshake reach the consumer in order, each once.
        for ref in range(3):
            await communicator.send_json_to({"type": "ping", "ref": ref})
        for ref in range(3):
            assert await communicator.receive_json_from(TIMEOUT) == {
                "type": "pong",
                "ref": ref,
            }
        assert value("authsocket_open_sockets") >= 1
        await communicator.disconnect()
    assert (accepted.value, abandoned.value) == (1, 0)
