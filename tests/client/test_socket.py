"""The client's socket against real daphne: transports, renewal, close codes."""

import asyncio
import contextlib
import itertools
import json
import logging
import signal
import time

import pytest
import websockets

from authsocket_client import (
    ApiClient,
    ConnectionStopped,
    CredentialsRejected,
    Disconnected,
    FrameError,
    MemoryTokenStore,
    Message,
    NetworkError,
    PresenceEvent,
    Tokens,
    Unsubscribed,
)
from tests.client.conftest import (
    FAST,
    PASSWORD,
    HttpRelay,
    next_message,
    store_in_lobby,
    welcome_frame,
)
from tests.http import call
from tests.servers import free_port, manage

pytestmark = [pytest.mark.e2e]


@pytest.mark.parametrize("transport", ["header", "subprotocol", "ticket", "query"])
async def test_every_transport_connects_subscribes_and_publishes(server, transport):
    async with ApiClient(server.http) as api:
        await api.login("alice", PASSWORD)
        async with api.socket(transport=transport) as socket:
            assert socket.welcome["user"]["username"] == "alice"
            assert 0 < await socket.ping(timeout=5) < 5
            await socket.subscribe("room:lobby")
            message_id = await socket.publish("room:lobby", {"text": transport})
            message = await next_message(socket)
            assert (message.stream, message.id) == ("room:lobby", message_id)
            assert message.data == {"text": transport}
            assert socket.stats.duplicates == {} and socket.stats.gaps == {}


async def test_token_is_renewed_in_band_before_it_expires(serve):
    server = serve(AUTHSOCKET_ACCESS_TTL=3, AUTHSOCKET_LEEWAY=0)
    async with ApiClient(server.http) as api:
        await api.login("alice", PASSWORD)
        async with api.socket(**FAST) as socket:
            await socket.subscribe("room:lobby")
            await asyncio.sleep(8)  # the point: outlive the 3 s token, twice over
            assert socket.live
            assert socket.stats.connects == 1, socket.stats
            assert socket.stats.closes == {}, socket.stats
            assert socket.stats.renewals >= 3, socket.stats
            assert api.refreshes >= 3
            message_id = await socket.publish("room:lobby", {"text": "still here"})
            assert (await next_message(socket)).id == message_id


class FrameReceived(logging.Handler):
    """Sets `seen` once the client's websockets DEBUG log shows a received
    frame holding `text`: it logs each frame as it reads it, before the
    socket handles it, and the socket handles frames in their order."""

    def __init__(self, text: str):
        super().__init__(logging.DEBUG)
        self.text = text
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        line = record.getMessage()
        if line.startswith("< ") and self.text in line:
            self.seen.set()


@contextlib.contextmanager
def frame_received(text: str):
    log = logging.getLogger("authsocket_client.websockets")
    handler, level = FrameReceived(text), log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        yield handler.seen
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


async def test_a_warning_during_a_renewal_does_not_refresh_a_second_time(serve):
    """The renewal is under way (its refresh held on its way to the server)
    when `auth.expiring` comes for the token it is replacing. Its `auth.ok`
    answers that warning too; renewing again for it would spend the new
    refresh token at once. The next refresh comes when the new token is due
    (at 0.3 of its 6 s), not right after the first."""
    server = serve(AUTHSOCKET_ACCESS_TTL=6, AUTHSOCKET_LEEWAY=0)
    refresh = "/api/auth/refresh"
    async with HttpRelay(server.http) as relay, ApiClient(relay.url) as api:
        await api.login("alice", PASSWORD)
        relay.hold(refresh)
        with frame_received('"auth.expiring"') as warned:
            # Renewal at 1.8 s; the server warns 2 s before `exp`, at 3 s or later.
            async with api.socket(ws_url=server.ws, renew_at=0.3, **FAST) as socket:
                await relay.arrival(refresh)
                assert not warned.is_set()  # the renewal came first
                await asyncio.wait_for(warned.wait(), 10)
                released = relay.release(refresh)
                following = await relay.arrival(refresh)
                assert following - released > 1.0, "refreshed again at once"
                assert socket.stats.renewals == 1 and socket.stats.closes == {}


async def test_expiry_4401_refreshes_and_resumes_without_losing_messages(serve):
    server = serve(AUTHSOCKET_ACCESS_TTL=3, AUTHSOCKET_LEEWAY=0)
    async with ApiClient(server.http) as api, ApiClient(server.http) as bob:
        await api.login("alice", PASSWORD)
        await bob.login("bob", PASSWORD)
        async with api.socket(renew=False, **FAST) as socket:
            await socket.subscribe("room:lobby", since=0)
            sent = []
            while socket.stats.closes[4401] == 0:  # keep posting across the close
                sent.append((await bob.room_post("lobby", {"n": len(sent)}))["id"])
                await asyncio.sleep(0.2)
                assert len(sent) < 50, "no 4401 within 10 s"
            sent.append((await bob.room_post("lobby", {"n": len(sent)}))["id"])
            got = []
            async with asyncio.timeout(15):
                async for event in socket.messages():
                    got.append(event.id)
                    if event.id == sent[-1]:
                        break
            assert [i for i in got if i >= sent[0]] == sent
            assert socket.stats.connects >= 2
            assert socket.stats.duplicates == {} and socket.stats.gaps == {}


async def test_revocation_4403_stops_the_socket_with_a_typed_error(server):
    async with ApiClient(server.http) as api:
        await api.login("alice", PASSWORD)
        socket = api.socket(**FAST)
        await socket.wait_live(10)
        await api.request("POST", "/api/auth/logout-all")
        with pytest.raises(CredentialsRejected) as stopped:
            async with asyncio.timeout(5):
                async for _ in socket:
                    pass
        assert stopped.value.code == "revoked"
        assert socket.stats.closes == {4403: 1}
        assert socket.stats.connects == 1  # never retried with dead credentials
        await socket.close()


async def test_refused_handshake_with_dead_credentials_stops_after_asking_why(server):
    async with ApiClient(server.http) as api, ApiClient(server.http) as other:
        await api.login("alice", PASSWORD)
        other.store.save(api.tokens)
        await other.request("POST", "/api/auth/logout")  # revokes the session
        socket = api.socket(**FAST)
        with pytest.raises(CredentialsRejected) as stopped:
            await socket.wait_live(10)
        assert stopped.value.code == "revoked"
        assert socket.stats.refusals == 1 and socket.stats.connects == 0


async def test_refused_handshake_with_good_credentials_gives_up_after_bounded_tries(
    server,
):
    async with ApiClient(server.http) as api:
        await api.login("alice", PASSWORD)
        # Any other path is refused at the upgrade (HTTP 403); /api/me still works.
        socket = api.socket(ws_url=server.ws + "elsewhere/", max_refusals=2, **FAST)
        with pytest.raises(ConnectionStopped) as stopped:
            await socket.wait_live(20)
        assert stopped.value.code == "handshake_refused"
        assert socket.stats.refusals == 3


async def test_connection_limit_4409_waits_and_retries(serve):
    server = serve(AUTHSOCKET_MAX_CONNECTIONS_PER_USER=1)
    async with ApiClient(server.http) as api:
        await api.login("alice", PASSWORD)
        first = api.socket(**FAST)
        await first.wait_live(10)
        second = api.socket(long_backoff=0.3, **FAST)
        second.start()
        try:
            async with asyncio.timeout(10):
                while second.stats.closes[4409] < 2:
                    await asyncio.sleep(0.05)
            assert not second.live
            await first.close()
            await second.wait_live(10)
            assert second.stats.connects == 1
        finally:
            await second.close()


async def test_truncated_replay_is_resumed_with_next_since_in_order(serve):
    server = serve(AUTHSOCKET_REPLAY_LIMIT=4)
    async with ApiClient(server.http) as api:
        await api.login("alice", PASSWORD)
        ids = [(await api.room_post("lobby", {"n": n}))["id"] for n in range(11)]
        async with api.socket(**FAST) as socket:
            await socket.subscribe("room:lobby", since=ids[0] - 1)
            assert await ids_until(socket, ids[-1], timeout=10) == ids
            assert socket.stats.duplicates == {} and socket.stats.gaps == {}


async def ids_until(socket, last: int, *, timeout: float) -> list[int]:
    """The ids of the messages the socket yields, up to and including `last`."""
    got = []
    async with asyncio.timeout(timeout):
        async for message in socket.messages():
            got.append(message.id)
            if message.id == last:
                return got
    raise AssertionError(f"the socket stopped after {got}")


PRUNE_LOBBY = """
from realtime.models import Message
Message.objects.filter(stream="room:lobby").delete()
"""


@pytest.mark.parametrize("why", ["past_the_end", "pruned"])
async def test_after_a_reset_the_socket_resumes_from_what_the_server_holds(serve, why):
    """`subscribed` says `reset: true` (the position is past the stream's end,
    or every message after it was pruned) and nothing is replayed; then the
    server restarts while messages are stored. They must all come, in order,
    with no gap counted for the ids the reset skipped."""
    server = serve()
    async with ApiClient(server.http) as api:
        await api.login("alice", PASSWORD)
        ids = [(await api.room_post("lobby", {"n": n}))["id"] for n in range(3)]
        if why == "pruned":
            await asyncio.to_thread(manage, server.env, "shell", "-c", PRUNE_LOBBY)
            since = ids[0]
        else:
            since = ids[-1] + 1000  # a position from before a database restore
        async with api.socket(**FAST) as socket:
            subscribed = await socket.subscribe("room:lobby", since=since)
            assert subscribed["reset"] is True and subscribed["last_id"] == ids[-1]
            await asyncio.to_thread(server.stop, signal.SIGTERM)
            await store_in_lobby(server.env, "while down", count=3)
            await asyncio.to_thread(server.start)
            stored = [m["id"] for m in await api.room_messages("lobby", after=ids[-1])]
            assert len(stored) == 3
            assert await ids_until(socket, stored[-1], timeout=15) == stored
            assert socket.stats.closes[4503] == 1 and socket.stats.connects == 2
            assert socket.stats.duplicates == {} and socket.stats.gaps == {}


async def test_user_stream_stored_while_away_is_replayed_after_a_reconnect(serve):
    """No `user` message was seen before the drop: the socket still learned
    the stream's `last_id`, so what `notify` stored while the server was down
    is replayed with `since` on the next connection."""
    server = serve()
    async with ApiClient(server.http) as api:
        await api.login("carol", PASSWORD)
        async with api.socket(**FAST) as socket:
            await socket.ping(timeout=5)
            await asyncio.to_thread(server.stop, signal.SIGTERM)
            await asyncio.to_thread(manage, server.env, "notify", "carol", "away")
            await asyncio.to_thread(server.start)
            message = await next_message(socket, timeout=15)
            assert (message.stream, message.data) == ("user", {"text": "away"})
            assert message.replay
            assert socket.stats.closes[4503] == 1 and socket.stats.connects == 2


def board_post(server, text: str) -> int:
    """Publish on `board:news` (a kind without history) through the test app."""
    status, body, _ = call("POST", f"{server.http}/kinds-test/board/news", text)
    assert status == 201, body
    return body["id"]


async def test_a_stream_without_history_is_followed_again_after_a_reconnect(serve):
    """A kind without history numbers its messages but refuses `since`
    (`bad_request`): after a drop the socket subscribes it again from now
    instead of dropping it."""
    server = serve(DJANGO_SETTINGS_MODULE="tests.settings_kinds")

    def board(text: str) -> int:
        return board_post(server, text)

    welcomes: list[asyncio.Event] = [asyncio.Event(), asyncio.Event()]

    def on_state(state: str, reason: str) -> None:
        if state == "live":
            next(e for e in welcomes if not e.is_set()).set()

    async with ApiClient(server.http) as api:
        await api.login("alice", PASSWORD)
        async with api.socket(on_state=on_state, **FAST) as socket:
            await socket.subscribe("board:news", timeout=10)
            first = await asyncio.to_thread(board, "before the drop")
            assert (await next_message(socket, timeout=10)).id == first
            await asyncio.to_thread(server.stop, signal.SIGTERM)
            await asyncio.to_thread(server.start)
            await asyncio.wait_for(welcomes[1].wait(), 15)
            # The first pong follows the refused `since`, whose handler sends
            # the subscribe from now; the second pong follows that subscribe.
            await socket.ping(timeout=5)
            await socket.ping(timeout=5)
            second = await asyncio.to_thread(board, "after the drop")
            message = await next_message(socket, timeout=10)
            assert (message.stream, message.id) == ("board:news", second)


async def test_a_refused_subscribe_again_keeps_the_subscription_held(serve):
    """Subscribing again with what the kind refuses (`since` without history:
    `bad_request`; presence without presence: `forbidden`) changes nothing on
    the server, so the stream held before must still be delivered."""
    server = serve(DJANGO_SETTINGS_MODULE="tests.settings_kinds")
    async with ApiClient(server.http) as api:
        await api.login("alice", PASSWORD)
        async with api.socket(**FAST) as socket:
            await socket.subscribe("board:news", timeout=10)
            for refused_code, options in (
                ("bad_request", {"since": 0}),
                ("forbidden", {"presence": True}),
            ):
                with pytest.raises(FrameError) as refused:
                    await socket.subscribe("board:news", timeout=10, **options)
                assert refused.value.code == refused_code
            posted = await asyncio.to_thread(board_post, server, "still held")
            message = await next_message(socket, timeout=10)
            assert (message.stream, message.id) == ("board:news", posted)
            assert socket.stats.gaps == {} and socket.presence("board:news") is None


async def test_an_answer_that_comes_late_is_a_typed_network_error(server):
    """`Catch AuthSocketError for everything` holds for a request's timeout
    too; the renewer, which retries on those, is not ended by a late
    `auth.ok`. The socket stays usable."""
    async with ApiClient(server.http) as api:
        await api.login("alice", PASSWORD)
        async with api.socket(**FAST) as socket:
            socket.request_timeout = 1e-6  # no round trip through daphne is this fast
            with pytest.raises(NetworkError):
                await socket.ping()
            socket.request_timeout = 10.0
            assert await socket.ping() < 10 and socket.stats.connects == 1


async def test_subscribing_before_welcome_subscribes_once(server):
    """`subscribe()` on a socket not yet live: the welcome does not subscribe
    the stream a second time (a second snapshot would show up as an event)."""
    async with ApiClient(server.http) as api:
        await api.login("alice", PASSWORD)
        socket = api.socket(**FAST)
        try:
            await socket.subscribe("room:lobby", presence=True, timeout=10)
            message_id = await socket.publish("room:lobby", {"text": "after"})
            events = []
            async with asyncio.timeout(10):
                async for event in socket:
                    events.append(event)
                    if isinstance(event, Message):
                        break
            assert [type(e) for e in events] == [PresenceEvent, Message], events
            assert events[0].kind == "snapshot" and events[1].id == message_id
        finally:
            await socket.close()


async def test_forbidden_stream_raises_the_wire_code(server):
    async with ApiClient(server.http) as api:
        await api.login("carol", PASSWORD)
        async with api.socket() as socket:
            with pytest.raises(FrameError) as refused:
                await socket.subscribe("room:team")
            assert refused.value.code == "forbidden"
            assert socket.position("room:team") is None


def memo_reader(server, key: str, username: str) -> None:
    """Let `username` read `memo:<key>` (a kind with history, any number of keys)."""
    url = f"{server.http}/kinds-test/memo/{key}/readers/{username}"
    status, body, _ = call("PUT", url)
    assert status == 204, body


async def test_a_resubscribe_refused_rate_limited_is_retried_not_dropped(serve):
    """A new connection resubscribes every stream at once; what the frame
    budget (burst 2N) refuses as `rate_limited` is only "not now": those
    streams are subscribed again after a backoff, never given up."""
    server = serve(
        DJANGO_SETTINGS_MODULE="tests.settings_kinds", AUTHSOCKET_FRAME_RATE="5/s"
    )
    # `user` and 12 memos: 13 resubscribes, the burst takes 10, 3 are refused
    # (at most N = 5 refusals in a row, so no close 4429).
    streams = [f"memo:m{n}" for n in range(12)]
    for stream in streams:
        await asyncio.to_thread(memo_reader, server, stream.split(":")[1], "alice")
    async with ApiClient(server.http) as api, ApiClient(server.http) as writer:
        await api.login("alice", PASSWORD)
        await writer.login("alice", PASSWORD)
        async with api.socket(**FAST) as socket, writer.socket(**FAST) as publisher:
            for stream in streams:
                await socket.subscribe(stream, timeout=10)
                await asyncio.sleep(0.25)  # within the budget of 5 frames a second
            await asyncio.to_thread(server.stop, signal.SIGTERM)
            await asyncio.to_thread(server.start)
            await socket.wait_live(15)
            await publisher.wait_live(15)
            await asyncio.sleep(2.5)  # the refused resubscribes are retried by now
            sent = {}
            for stream in streams:
                sent[stream] = await publisher.publish(stream, {"to": stream})
                await asyncio.sleep(0.25)
            got = {}
            async with asyncio.timeout(10):
                async for event in socket:
                    assert not isinstance(event, Unsubscribed), event
                    if isinstance(event, Message) and not event.replay:
                        got[event.stream] = event.id
                        if got == sent:
                            break
            assert socket.stats.closes == {4503: 1}, socket.stats
            assert socket.stats.gaps == {} and socket.stats.duplicates == {}


async def test_a_socket_closed_before_it_started_stays_closed(server):
    """`close()` is for good: iterating the events, `wait_live()` or `start()`
    afterwards never opens a connection (nothing would ever close it)."""
    async with ApiClient(server.http) as api:
        await api.login("alice", PASSWORD)
        socket = api.socket(**FAST)
        await socket.close()
        async with asyncio.timeout(5):
            assert [event async for event in socket] == []
        with pytest.raises(Disconnected):
            await socket.wait_live(5)
        socket.start()
        await asyncio.sleep(1.5)  # a connection would be welcomed by now
        assert socket.stats.connects == 0 and socket.state == "stopped"
        assert not socket.live


async def test_subscribing_a_held_stream_with_a_lower_since_counts_no_gap(server):
    """On a socket, the server never sends an id twice (§4.2): a `since` below
    what was delivered replays nothing, and the next live id follows on."""
    async with ApiClient(server.http) as api:
        await api.login("alice", PASSWORD)
        async with api.socket(**FAST) as socket:
            await socket.subscribe("room:lobby")
            first = await socket.publish("room:lobby", {"n": 1})
            assert (await next_message(socket)).id == first
            await socket.subscribe("room:lobby", since=0)
            second = await socket.publish("room:lobby", {"n": 2})
            message = await next_message(socket)
            assert (message.id, message.replay) == (second, False)
            assert socket.stats.gaps == {} and socket.stats.duplicates == {}
            assert socket.position("room:lobby") == second


async def test_since_below_a_position_only_learned_replays_what_is_stored(serve):
    """`subscribe(stream, since=0)` on a stream the socket holds but on which
    it has delivered nothing (its position is the `last_id` it was told)
    replays what is stored, for `user` as for a room."""
    server = serve()
    await store_in_lobby(server.env, "before", count=3)
    await asyncio.to_thread(manage, server.env, "notify", "alice", "stored")
    async with ApiClient(server.http) as api:
        await api.login("alice", PASSWORD)
        async with api.socket(**FAST) as socket:
            await socket.subscribe("room:lobby")
            for stream, count in (("user", 1), ("room:lobby", 3)):
                await socket.subscribe(stream, since=0)
                replayed = [await next_message(socket) for _ in range(count)]
                assert [m.stream for m in replayed] == [stream] * count
                assert all(m.replay for m in replayed)
            assert socket.stats.gaps == {} and socket.stats.duplicates == {}


async def test_a_server_that_welcomes_and_drops_at_once_gets_a_growing_backoff():
    """`welcome` alone does not reset the backoff: a socket must live a
    second first, or a server that welcomes and drops is retried at the
    shortest delay forever (§4.3: capped exponential backoff)."""
    opened: list[float] = []

    async def welcome_and_drop(ws):
        opened.append(asyncio.get_running_loop().time())
        await ws.send(json.dumps(welcome_frame()))
        await ws.close(1011)

    async with websockets.serve(welcome_and_drop, "127.0.0.1", 0) as fake:
        port = fake.sockets[0].getsockname()[1]
        store = MemoryTokenStore(Tokens("a.b.c", None, time.time() + 300, 300))
        async with ApiClient(f"http://127.0.0.1:{port}", store=store) as api:
            socket = api.socket(transport="header", backoff_base=0.02, backoff_cap=5)
            socket.start()
            async with asyncio.timeout(10):
                while len(opened) < 6:
                    await asyncio.sleep(0.01)
            await socket.close()
    gaps = [later - earlier for earlier, later in itertools.pairwise(opened)]
    # Drawn in [half, full] of 0.02·2ⁿ: at most 0.02 s first, at least 0.16 s fifth.
    assert gaps[-1] > 4 * gaps[0], gaps


async def test_a_socket_not_live_in_time_is_a_typed_error_too():
    """`Catch AuthSocketError for everything`: a call whose `timeout` runs
    out before the socket is live (the server unreachable here) raises a
    NetworkError, still a TimeoutError for callers that caught that."""
    store = MemoryTokenStore(Tokens("a.b.c", None, time.time() + 300, 300))
    async with ApiClient(f"http://127.0.0.1:{free_port()}", store=store) as api:
        socket = api.socket(**FAST)
        try:
            for call in (
                socket.wait_live(0.2),
                socket.publish("room:lobby", {}, timeout=0.2),
                socket.subscribe("room:lobby", timeout=0.2),
            ):
                with pytest.raises(NetworkError) as late:
                    await call
                assert isinstance(late.value, TimeoutError)
        finally:
            await socket.close()
