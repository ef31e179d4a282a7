"""The `user` stream's `reset`: the ids it skipped are read over HTTP.

The `user` stream is live from `welcome`. A notification stored after
`welcome` but before the server reads the client's resubscribe (with
`since`) is sent first; the ids between `since` and it can no longer be sent
on that socket, so `subscribed` says `reset` (docs/protocol.md §4.2). They
are still stored: the client reads them with
`GET /api/streams/user/messages?after=<since>` and hands them on, in id
order, before what came live.

The race is made certain, not hoped for: the socket runs through a relay
(`SocketRelay`) that holds the client's resubscribe until the live
notification has reached the client.
"""

import asyncio
import contextlib
import logging

import httpx
import pytest

from authsocket_client import ApiClient
from authsocket_client.socket import FILL_TRIES
from tests.client.conftest import FAST, PASSWORD, HttpRelay, SocketRelay
from tests.client.test_socket import frame_received, ids_until

pytestmark = [pytest.mark.e2e]

HISTORY = "/api/streams/user/messages"


async def notify(admin: ApiClient, user_id: int, text: str) -> int:
    """Store a notification on the user's stream; answers its id."""
    stored = await admin.request(
        "POST", f"/api/users/{user_id}/notify", body={"data": {"text": text}}
    )
    return stored["id"]


@contextlib.asynccontextmanager
async def raced(server, api_url: str):
    """carol's socket, through a relay, resubscribing `user` after a drop.

    Yields `(socket, race, tell)`: `tell(text)` notifies carol and answers
    the id; `race()` drops the connection; while the socket
    waits at the relay's door it stores a notification (the one at risk);
    once the new connection is welcomed, with its resubscribe held, it
    stores another, which reaches the client live first; then it lets the
    resubscribe go. Answers the ids: (before the drop, at risk, live).
    """
    async with (
        SocketRelay(server.port) as relay,
        ApiClient(api_url) as api,
        ApiClient(server.http) as admin,
    ):
        await api.login("carol", PASSWORD)
        await admin.login("admin", PASSWORD)
        socket = api.socket(ws_url=relay.ws, **FAST)
        await socket.wait_live(10)
        carol = socket.welcome["user"]["id"]

        async def tell(text: str) -> int:
            return await notify(admin, carol, text)

        async def race() -> tuple[int, int, int]:
            first = await tell("before the drop")
            assert await ids_until(socket, first, timeout=10) == [first]
            # Ids only go up: the live one will be `first + 2`, within the
            # start of its frame, which is all websockets' DEBUG line shows.
            # That log is on for connections opened with it on: before the drop.
            head = f'"stream":"user","id":{first + 2},'
            with frame_received(head) as received:
                relay.shut()
                relay.drop()
                await relay.arrival()  # the socket is back, waiting at the door
                at_risk = await tell("stored while away")
                relay.hold_sent()
                relay.open()
                await socket.wait_live(10)  # welcomed; its resubscribe is held
                live = await tell("live after welcome")
                await asyncio.wait_for(received.wait(), 10)
            relay.release_sent()
            assert (at_risk, live) == (first + 1, first + 2)
            return first, at_risk, live

        try:
            yield socket, race, tell
        finally:
            await socket.close()


async def test_a_reset_on_user_reads_the_skipped_ids_over_http(serve):
    """The notification stored while away comes, once, before the live one
    (which the server sent first), with nothing counted as a gap."""
    server = serve()
    async with raced(server, server.http) as (socket, race, tell):
        first, at_risk, live = await race()
        assert await ids_until(socket, live, timeout=10) == [at_risk, live]
        assert socket.stats.resets == 1 and socket.stats.fills == 1
        assert socket.stats.duplicates == {} and socket.stats.gaps == {}
        # Then on as ever: the next one live, and no fill of its own.
        after = await tell("after the fill")
        assert await ids_until(socket, after, timeout=10) == [after]
        assert socket.position("user") == after and socket.stats.fills == 1


async def test_a_failing_read_is_retried_with_backoff(serve):
    """The first read answers 503 (with `Retry-After`): it is tried again
    after the wait, and what it reads is handed on as ever."""
    server = serve()
    async with HttpRelay(server.http) as http:
        unavailable = httpx.Response(
            503,
            json={"detail": "down", "code": "unavailable"},
            headers={"Retry-After": "1"},
        )
        async with raced(server, http.url) as (socket, race, tell):
            http.answer_once(HISTORY, unavailable)
            first, at_risk, live = await race()
            failed = await http.arrival(HISTORY)
            retried = await http.arrival(HISTORY)
            assert retried - failed >= 1.0  # its Retry-After was waited
            assert await ids_until(socket, live, timeout=10) == [at_risk, live]
            assert socket.stats.fills == 1 and socket.stats.gaps == {}


async def test_a_read_that_keeps_failing_is_a_counted_gap_not_a_dead_socket(
    serve, caplog
):
    """Every try answers 503: the socket gives up after a bounded number,
    says so (a warning, and the skipped id counted in `stats.gaps`), hands
    on the live notification, and stays up."""
    server = serve()
    async with HttpRelay(server.http) as http:
        unavailable = httpx.Response(503, json={"detail": "down", "code": "down"})
        async with raced(server, http.url) as (socket, race, tell):
            for _ in range(10):
                http.answer_once(HISTORY, unavailable)
            caplog.set_level(logging.WARNING, logger="authsocket_client")
            first, at_risk, live = await race()
            assert await ids_until(socket, live, timeout=20) == [live]
            for _ in range(FILL_TRIES):
                await http.arrival(HISTORY)
            assert socket.stats.fills == 0 and socket.stats.gaps == {"user": 1}
            assert "could not be read" in caplog.text
            assert socket.live
            after = await tell("still live")
            assert await ids_until(socket, after, timeout=10) == [after]
