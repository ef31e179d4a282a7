"""A consumer that raises is counted like any other refusal or close.

daphne answers a handshake whose application raised with HTTP 500, and
closes an accepted socket whose application raised with 1011: the
application never sends either, so realtime/socket_metrics.py counts them
from the exception. Before this, a crash in `socket_allowed()` (a project's
database query during an outage, say) moved no counter, and the refusal
alerts of docs/metrics.md never saw it.
"""

import asyncio

import pytest
from channels.testing import WebsocketCommunicator
from django.db import OperationalError
from django.urls import re_path

from realtime.base_consumer import AuthenticatedConsumer
from realtime.protocol import CloseCode
from realtime.routing import websocket_application, websocket_routes
from realtime.tests.conftest import TIMEOUT
from tests.metrics import Delta, value

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


class Crash(RuntimeError):
    """A project consumer's bug."""


class CrashingConsumer(AuthenticatedConsumer):
    where: str  # the hook that raises, set by the test
    error: Exception

    async def socket_allowed(self) -> bool:
        if self.where == "socket_allowed":
            raise self.error
        return True

    async def socket_authenticated(self) -> None:
        if self.where == "socket_authenticated":
            raise self.error


@pytest.fixture
def crashing(alice, open_session, monkeypatch):
    """A communicator on /ws/crash/ whose consumer raises `error` in `where`."""
    access = open_session(alice).access

    def make(where: str, error: Exception) -> WebsocketCommunicator:
        monkeypatch.setattr(CrashingConsumer, "where", where, raising=False)
        monkeypatch.setattr(CrashingConsumer, "error", error, raising=False)
        application = websocket_application(
            websocket_routes(re_path(r"^ws/crash/$", CrashingConsumer.as_asgi()))
        )
        return WebsocketCommunicator(application, f"/ws/crash/?token={access}")

    return make


async def ended(communicator: WebsocketCommunicator) -> None:
    """The application's end, as soon as it comes (its output is not read:
    `receive_output` would wait out its timeout before raising)."""
    await asyncio.wait_for(asyncio.shield(communicator.future), TIMEOUT)


def handshakes(outcome: str, reason: str) -> Delta:
    return Delta(
        "authsocket_handshakes_total", outcome=outcome, reason=reason, transport="query"
    )


@pytest.mark.parametrize(
    "error, reason",
    [
        (Crash("bug"), "error"),
        (OperationalError("database down"), "database_unavailable"),
    ],
)
async def test_a_handshake_whose_consumer_raises_is_a_counted_refusal(
    crashing, error, reason
):
    communicator = crashing("socket_allowed", error)
    open_before = value("authsocket_open_sockets")
    with handshakes("refused", reason) as refused:
        await communicator.send_input({"type": "websocket.connect"})
        with pytest.raises(type(error)):
            await ended(communicator)
    assert refused.value == 1
    assert value("authsocket_open_sockets") == open_before


async def test_an_open_socket_whose_consumer_raises_counts_its_1011(crashing):
    communicator = crashing("socket_authenticated", Crash("bug"))
    open_before = value("authsocket_open_sockets")
    closes = Delta(
        "authsocket_close_codes_total", code=str(CloseCode.INTERNAL_ERROR.value)
    )
    with handshakes("accepted", "none") as accepted, closes:
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        assert connected
        with pytest.raises(Crash):
            await ended(communicator)
    assert (accepted.value, closes.value) == (1, 1)
    assert value("authsocket_open_sockets") == open_before
