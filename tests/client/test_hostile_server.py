"""The client against a server that misbehaves: its frames are checked, not
trusted, and its redirects do not get the credentials.

Against scripted servers (`websockets.serve`), because daphne never sends
these frames: what the client must survive is exactly what authsocket does
not do.
"""

import asyncio
import gzip
import itertools
import json
import logging
import math
import time
from http import HTTPStatus

import httpx
import pytest
import websockets

from authsocket_client import (
    ApiClient,
    ApiError,
    AuthSocketError,
    ConnectionStopped,
    MemoryTokenStore,
    NetworkError,
    NotJson,
    ServerClient,
    Tokens,
)
from authsocket_client.http import (
    MAX_ANSWER_BYTES,
    MAX_RETRY_AFTER,
    HttpSession,
    retry_after,
)
from tests.client.conftest import (
    FAST,
    PASSWORD,
    HttpRelay,
    LocalTcpServer,
    ScriptedServer,
    next_message,
    scripted_socket,
    welcome_frame,
)
from tests.http import QuietHandler, http_origin

pytestmark = [pytest.mark.e2e]


BOB = {"id": 2, "username": "bob"}


async def held_with_presence(server: ScriptedServer, socket, stream: str):
    """`stream` subscribed with presence at `last_id` 0, bob present on it;
    answers the connection."""
    subscribing = asyncio.create_task(socket.subscribe(stream, presence=True))
    (ws, user, _), (_, room, _) = await server.subscribes(2)
    await server.answer(ws, user)
    await server.answer(ws, room)
    await asyncio.wait_for(subscribing, 5)
    snapshot = {"type": "presence", "stream": stream, "count": 1}
    await ws.send(json.dumps({**snapshot, "users": [{**BOB, "connections": 1}]}))
    return ws


MALFORMED = {
    "message id not an integer": {"type": "message", "stream": "room:r", "id": "1"},
    "message id null": {"type": "message", "stream": "room:r", "id": None},
    "message id a boolean": {"type": "message", "stream": "room:r", "id": True},
    "message stream not a string": {"type": "message", "stream": ["room:r"], "id": 1},
    "message sender a string": {
        "type": "message",
        "stream": "room:r",
        "id": 1,
        "sender": "bob",
    },
    "message sender a list": {
        "type": "message",
        "stream": "room:r",
        "id": 1,
        "sender": [BOB],
    },
    "message sender id not an integer": {
        "type": "message",
        "stream": "room:r",
        "id": 1,
        "sender": {"id": "2", "username": "bob"},
    },
    "snapshot users not a list": {
        "type": "presence",
        "stream": "room:r",
        "users": 5,
        "count": 1,
    },
    "snapshot user id not an integer": {
        "type": "presence",
        "stream": "room:r",
        "users": [{"id": [1], "username": "x"}],
        "count": 1,
    },
    "join user id not an integer": {
        "type": "presence.join",
        "stream": "room:r",
        "user": {"id": {"a": 1}, "username": "x"},
    },
    "leave user id not an integer": {
        "type": "presence.leave",
        "stream": "room:r",
        "user": {"id": [1], "username": "x"},
    },
    "nested beyond the parser's depth": "[" * 100_000 + "]" * 100_000,
}


@pytest.mark.parametrize("frame", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_malformed_frame_is_ignored_and_the_socket_stays_up(frame):
    """One bad frame of the server (wrong types, too deep for the parser)
    must not stop the socket for good nor swallow what follows: it is
    ignored, and the next good message of the stream is delivered. A
    `sender` that is no user was delivered, and `listen` died on it."""
    async with ScriptedServer() as server, scripted_socket(server) as socket:
        ws = await held_with_presence(server, socket, "room:r")
        await ws.send(frame if isinstance(frame, str) else json.dumps(frame))
        await ws.send(json.dumps({"type": "message", "stream": "room:r", "id": 1}))
        message = await next_message(socket)
        assert (message.stream, message.id, message.sender) == ("room:r", 1, None)
        assert socket.live and socket.error is None
        assert socket.stats.connects == 1 and socket.stats.closes == {}
        assert socket.stats.gaps == {} and socket.stats.duplicates == {}
        assert socket.presence("room:r") is not None


async def test_a_stream_without_history_resubscribed_from_now_counts_no_gap():
    """A kind without history refuses `since` (`bad_request`), so after a
    reconnect the socket follows it again from now: what was published
    while it was away was never going to come, and `subscribed` says where
    "now" is (`last_id`). The next id is no gap: `stats.gaps` counts what
    the server skipped, not what the client chose not to ask for."""
    async with ScriptedServer() as server, scripted_socket(server) as socket:
        subscribing = asyncio.create_task(socket.subscribe("board:b"))
        (ws, user, _), (_, board, _) = await server.subscribes(2)
        await server.answer(ws, user)
        await server.answer(ws, board)
        await asyncio.wait_for(subscribing, 5)
        await ws.send(json.dumps({"type": "message", "stream": "board:b", "id": 1}))
        assert (await next_message(socket)).id == 1
        await ws.close(1011)
        (ws, user, _), (_, board, _) = await server.subscribes(2)
        assert board["since"] == 1
        await server.answer(ws, user)
        await server.refuse(ws, board, "bad_request")
        (_, board, _) = await server.next()
        assert board["type"] == "subscribe" and "since" not in board
        await ws.send(
            json.dumps(
                {
                    "type": "subscribed",
                    "stream": "board:b",
                    "last_id": 5,
                    "ref": board["ref"],
                }
            )
        )
        await ws.send(json.dumps({"type": "message", "stream": "board:b", "id": 6}))
        assert (await next_message(socket)).id == 6
        assert socket.stats.gaps == {} and socket.stats.duplicates == {}
        assert socket.position("board:b") == 6


ACCESS = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2VjcmV0LXNpZ25hdHVyZQ"


class Trap:
    """A WebSocket server that records every handshake it is sent, and refuses it."""

    def __init__(self):
        self.requests: list = []

    def _record(self, connection, request):
        self.requests.append(request)
        return connection.respond(HTTPStatus.FORBIDDEN, "trap\n")

    async def __aenter__(self):
        self._server = await websockets.serve(
            None, "127.0.0.1", 0, process_request=self._record
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info):
        self._server.close()
        await self._server.wait_closed()


@pytest.mark.parametrize("transport", ["header", "subprotocol"])
async def test_a_redirect_to_another_origin_never_gets_the_token(transport):
    """The handshake carries the access token (header or subprotocol). A
    redirect answered to it (a proxy moved to another host, an open
    redirect) must not carry it to another origin: the client refuses to
    follow, as a browser drops `Authorization` on a cross-origin redirect."""

    def redirect(connection, request):
        response = connection.respond(HTTPStatus.FOUND, "moved\n")
        response.headers["Location"] = f"ws://127.0.0.1:{trap.port}/ws/"
        return response

    async with (
        Trap() as trap,
        websockets.serve(None, "127.0.0.1", 0, process_request=redirect) as moved,
    ):
        port = moved.sockets[0].getsockname()[1]
        store = MemoryTokenStore(Tokens(ACCESS, None, time.time() + 300, 300))
        async with ApiClient(f"http://127.0.0.1:{port}", store=store) as api:
            socket = api.socket(transport=transport, max_refusals=0, **FAST)
            try:
                with pytest.raises(AuthSocketError):
                    await socket.wait_live(10)
            finally:
                await socket.close()
        assert trap.requests == []


async def test_a_socket_stopped_by_an_unexpected_error_closes_its_connection():
    """An error the socket does not expect (here the caller's `on_state`
    callback raising) stops it for good, loudly; the connection it had open
    must close with it, not stay up on its keepalive with nobody reading."""

    def on_state(state: str, reason: str) -> None:
        if state == "live":
            raise RuntimeError("a bug in the callback")

    async with ScriptedServer() as server:
        store = MemoryTokenStore(Tokens(ACCESS, None, time.time() + 300, 300))
        async with ApiClient(server.url, store=store) as api:
            socket = api.socket(on_state=on_state, **FAST)
            try:
                with pytest.raises(AuthSocketError) as stopped:
                    async with asyncio.timeout(5):
                        async for _ in socket:
                            pass
                assert stopped.value.code == "client_error"
                await asyncio.wait_for(server.connections[0].wait_closed(), 5)
            finally:
                await socket.close()


async def test_a_redirect_within_the_origin_is_still_followed():
    """A path moved on the same server (`/ws/` → `/ws/v2/`) keeps working:
    only another origin is refused."""

    def redirect(connection, request):
        if request.path == "/ws/":
            response = connection.respond(HTTPStatus.MOVED_PERMANENTLY, "moved\n")
            response.headers["Location"] = "/ws/v2/"
            return response
        return None

    async def welcome(ws):
        await ws.send(json.dumps(welcome_frame()))
        await ws.wait_closed()

    async with websockets.serve(
        welcome, "127.0.0.1", 0, process_request=redirect
    ) as moved:
        port = moved.sockets[0].getsockname()[1]
        store = MemoryTokenStore(Tokens(ACCESS, None, time.time() + 300, 300))
        async with (
            ApiClient(f"http://127.0.0.1:{port}", store=store) as api,
            api.socket(**FAST) as socket,
        ):
            assert socket.welcome["user"]["username"] == "alice"


async def test_frames_above_a_mebibyte_are_read_when_the_limit_is_raised():
    """websockets closes a connection whose frame is over its limit (1 MiB
    unless told), and a stored message that big is replayed at every
    reconnect: a server whose AUTHSOCKET_MAX_MESSAGE_BYTES is raised above
    it needs a client whose limit can be raised too."""
    big = "x" * (2 * 2**20)
    async with ScriptedServer() as server:
        store = MemoryTokenStore(Tokens(ACCESS, None, time.time() + 300, 300))
        async with ApiClient(server.url, store=store) as api:
            socket = api.socket(max_message_bytes=4 * 2**20, renew=False, **FAST)
            try:
                await socket.wait_live(5)
                ws = server.connections[0]
                frame = {"type": "message", "stream": "user", "id": 1, "data": big}
                await ws.send(json.dumps(frame))
                message = await next_message(socket)
                assert (message.id, len(message.data)) == (1, len(big))
                assert socket.stats.closes == {}
            finally:
                await socket.close()


async def test_closing_the_client_closes_the_sockets_it_made():
    """A socket runs on its client's HTTP session (refresh, tickets, asking
    why a handshake was refused). Closing the client ends its sockets too,
    instead of leaving them connected until the next HTTP call fails."""
    async with ScriptedServer() as server:
        store = MemoryTokenStore(Tokens(ACCESS, None, time.time() + 300, 300))
        api = ApiClient(server.url, store=store)
        socket = api.socket(**FAST)
        await socket.wait_live(5)
        await api.aclose()
        await asyncio.wait_for(server.connections[0].wait_closed(), 5)
        assert socket.state == "stopped"
        async with asyncio.timeout(5):
            assert [event async for event in socket] == []


async def test_a_published_answer_without_an_id_is_a_typed_error():
    """`publish()` answers the stored id; an answer without one is the
    server's fault, raised as an AuthSocketError like every other failure,
    not a KeyError out of the client's insides."""
    async with ScriptedServer() as server, scripted_socket(server) as socket:
        publishing = asyncio.create_task(socket.publish("room:r", {"n": 1}))
        while True:
            ws, frame, _ = await server.next()
            if frame["type"] == "publish":
                break
        await ws.send(json.dumps({"type": "published", "ref": frame["ref"]}))
        with pytest.raises(AuthSocketError) as refused:
            await asyncio.wait_for(publishing, 5)
        assert refused.value.code == "bad_answer"
        assert socket.live


async def test_an_http_answer_too_deep_to_parse_is_still_a_typed_error():
    """An error page the client cannot parse (too deep for Python's parser
    here) is judged by its status, as an HTML page from a proxy is: the
    ApiError of that status, which ServerClient retries on a 5xx."""
    deep = b"[" * 100_000 + b"]" * 100_000
    calls = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            return httpx.Response(503, content=deep)
        return httpx.Response(201, json={"stream": "room:r", "id": 1})

    transport = httpx.MockTransport(answer)
    backend = ServerClient("http://server.test", "ask_key", backoff_base=0.01)
    await backend.http.aclose()  # replaced by one on the scripted transport
    backend.http = HttpSession(
        backend.url,
        timeout=5,
        client=httpx.AsyncClient(base_url=backend.url, transport=transport),
    )
    async with backend:
        assert (await backend.publish("room:r", {}))["id"] == 1
    assert len(calls) == 2
    keys = {request.headers["Idempotency-Key"] for request in calls}
    assert len(keys) == 1


@pytest.mark.parametrize("asked", ["86400", "1e999"], ids=["a day", "forever"])
async def test_a_retry_after_beyond_the_cap_is_raised_not_slept(asked):
    """A server, or a proxy before it, answers 429 with `Retry-After` of a
    day (or more than any float): the call must not hang its caller that
    long. Beyond `max_retry_wait` the ApiError is raised at once, carrying
    what was asked, and nothing is sent again."""
    requests = []

    class Throttled(QuietHandler):
        def do_POST(self):
            requests.append(self.path)
            body = b'{"detail": "slow down", "code": "throttled"}'
            self.answer(429, body, "application/json", {"Retry-After": asked})

    with http_origin(Throttled) as origin:
        async with ServerClient(origin, "ask_key", backoff_base=0.01) as backend:
            with pytest.raises(ApiError) as throttled:
                async with asyncio.timeout(5):
                    await backend.publish("room:r", {"n": 1})
    assert throttled.value.status == 429 and throttled.value.code == "throttled"
    assert throttled.value.retry_after == min(float(asked), MAX_RETRY_AFTER)
    assert requests == ["/api/server/publish"]


RETRY_AFTERS = {
    "seconds": ("120", None, 120.0),
    "zero": ("0", None, 0.0),
    "beyond a day": ("604800", None, MAX_RETRY_AFTER),
    "beyond any float": ("1e999", None, MAX_RETRY_AFTER),
    "infinity": ("inf", None, MAX_RETRY_AFTER),
    "not a number": ("nan", None, None),
    "negative": ("-5", None, None),
    "unreadable": ("soon", None, None),
    "a date, from the server's Date": (
        "Wed, 21 Oct 2015 07:28:00 GMT",
        "Wed, 21 Oct 2015 07:26:30 GMT",
        90.0,
    ),
    "a date already past": ("Wed, 21 Oct 2015 07:28:00 GMT", None, 0.0),
    "a date past year 9999": ("1 Jan 99999999999 00:00:00 GMT", None, None),
}


@pytest.mark.parametrize(
    ("header", "date", "expected"), RETRY_AFTERS.values(), ids=RETRY_AFTERS.keys()
)
def test_retry_after_is_a_finite_wait_or_none(header, date, expected):
    """Whatever a server or proxy sends as `Retry-After`, the client gets a
    wait it can sleep (finite, at least 0, at most a day) or None: never
    `inf` or NaN, which every computed wait would inherit. An HTTP-date
    (RFC 9110 allows it) counts from the answer's own `Date`."""
    headers = {"Retry-After": header, **({"Date": date} if date else {})}
    assert retry_after(httpx.Response(429, headers=headers)) == expected


THROTTLED = {"detail": "slow down", "code": "throttled"}
TICKET = "/api/auth/ticket"


def throttled(asked: str) -> httpx.Response:
    return httpx.Response(429, headers={"Retry-After": asked}, json=THROTTLED)


def capped_warnings(caplog) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno == logging.WARNING and "max_retry_wait" in record.getMessage()
    ]


@pytest.mark.parametrize("asked", ["86400", "1e999"], ids=["a day", "forever"])
async def test_a_ticket_throttled_for_a_day_delays_the_socket_only_max_retry_wait(
    server, asked, caplog
):
    """A proxy before the server answers the socket's ticket requests 429
    with `Retry-After` of a day (or beyond any float), twice, then lets
    them through. A socket runs in the background, where nobody would see
    it stalled for a day: it waits `max_retry_wait` each time, tries again,
    and is live within seconds; the warning comes once, not per retry."""
    async with HttpRelay(server.http) as relay, ApiClient(relay.url) as api:
        await api.login("alice", PASSWORD)
        relay.answer_once(TICKET, throttled(asked))
        relay.answer_once(TICKET, throttled(asked))
        socket = api.socket(
            transport="ticket", ws_url=server.ws, max_retry_wait=0.5, **FAST
        )
        with caplog.at_level(logging.WARNING, logger="authsocket_client"):
            await socket.wait_live(10)
        arrivals = [await relay.arrival(TICKET) for _ in range(3)]
        waits = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
        assert min(waits) >= 0.5, waits
        assert socket.stats.connects == 1
    assert len(capped_warnings(caplog)) == 1, caplog.text


@pytest.mark.parametrize("asked", ["86400", "1e999"], ids=["a day", "forever"])
async def test_a_refusal_whose_diagnosis_is_throttled_for_a_day_still_reconnects(
    server, asked, caplog
):
    """The handshake is refused (a ticket the server never issued), and
    `GET /api/me`, asked why, is answered 429 with `Retry-After` of a day
    by a proxy. The socket waits `max_retry_wait`, not a day, and the next
    try (a real ticket) is live."""
    async with HttpRelay(server.http) as relay, ApiClient(relay.url) as api:
        await api.login("alice", PASSWORD)
        bogus = {"ticket": "not-a-ticket-of-this-server", "expires_in": 30}
        relay.answer_once(TICKET, httpx.Response(200, json=bogus))
        relay.answer_once("/api/me", throttled(asked))
        socket = api.socket(
            transport="ticket", ws_url=server.ws, max_retry_wait=0.5, **FAST
        )
        with caplog.at_level(logging.WARNING, logger="authsocket_client"):
            await socket.wait_live(10)
        asked_why = await relay.arrival("/api/me")
        await relay.arrival(TICKET)  # the bogus one
        retried = await relay.arrival(TICKET)
        assert retried - asked_why >= 0.5
        assert socket.stats.connects == 1
    assert len(capped_warnings(caplog)) == 1, caplog.text


@pytest.mark.parametrize("cap", [math.inf, math.nan, -1.0])
async def test_a_max_retry_wait_that_is_no_bound_is_refused(cap):
    async with ApiClient("http://127.0.0.1:9") as api:
        with pytest.raises(ValueError, match="max_retry_wait"):
            api.socket(max_retry_wait=cap)


TICKET_SECRET = "ticket-secret-of-the-test"


class ApiStub(QuietHandler):
    """The HTTP API of a socket's tests: each `(method, path)` of `routes`
    answered with its (status, body) in turn, the last one for ever after;
    alice's `GET /api/me` and a fresh ticket unless told otherwise."""

    routes: dict = {}

    def _route(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        defaults = {
            ("GET", "/api/me"): [(200, {"id": 1, "username": "alice"})],
            ("POST", "/api/auth/ticket"): [(200, {"ticket": TICKET_SECRET})],
        }
        answers = self.routes.get((self.command, self.path)) or defaults.get(
            (self.command, self.path), [(404, {"code": "not_found"})]
        )
        status, body = answers.pop(0) if len(answers) > 1 else answers[0]
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.answer(status, raw, "application/json")

    do_GET = do_POST = _route


def api_stub(routes: dict | None = None) -> type[ApiStub]:
    return type("Stub", (ApiStub,), {"routes": routes or {}})


UNUSABLE_LOCATIONS = ["#x", "http://127.0.0.1/ws/", "ws://127.0.0.1:notaport/ws/"]


@pytest.mark.parametrize("location", UNUSABLE_LOCATIONS)
@pytest.mark.parametrize("transport", ["ticket", "query", "header"])
async def test_a_redirect_websockets_cannot_follow_is_a_refused_handshake(
    location, transport, caplog
):
    """A redirect whose `Location` websockets cannot parse (a fragment, an
    http:// URL, a port that is no number) made it raise InvalidURI or
    ValueError, quoting the URL with the ticket or token in it: the socket
    stopped for good as a client bug, the credential in its error and in
    the log. It is a refused handshake like any redirect not followed:
    asked why (`me`), and here, with no refusal allowed, `handshake_refused`,
    with no credential in any message."""

    def redirect(connection, request):
        response = connection.respond(HTTPStatus.FOUND, "moved\n")
        response.headers["Location"] = location
        return response

    async with websockets.serve(
        None, "127.0.0.1", 0, process_request=redirect
    ) as moved:
        ws_url = f"ws://127.0.0.1:{moved.sockets[0].getsockname()[1]}/ws/"
        with http_origin(api_stub()) as origin:
            store = MemoryTokenStore(Tokens(ACCESS, None, time.time() + 300, 300))
            async with ApiClient(origin, store=store) as api:
                socket = api.socket(
                    transport=transport, ws_url=ws_url, max_refusals=0, **FAST
                )
                try:
                    with (
                        caplog.at_level(logging.DEBUG, logger="authsocket_client"),
                        pytest.raises(ConnectionStopped) as stopped,
                    ):
                        await socket.wait_live(10)
                finally:
                    await socket.close()
    assert stopped.value.code == "handshake_refused"
    assert socket.stats.refusals == 1
    for secret in (ACCESS, TICKET_SECRET):
        assert secret not in str(stopped.value)
        assert secret not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_connection_never_welcomed_is_closed_and_tried_again():
    """A server that accepts the upgrade and never sends `welcome` (a stuck
    consumer; keepalive pings are still answered) held the socket
    `connecting` on that one connection for ever, and `async with
    api.socket()` with it. `open_timeout` bounds the wait for `welcome` as
    it does the handshake: the connection is closed, and the next one,
    welcomed, is live."""
    accepted: asyncio.Queue = asyncio.Queue()
    count = itertools.count(1)

    async def welcome_only_the_second(ws):
        accepted.put_nowait(ws)
        if next(count) > 1:
            await ws.send(json.dumps(welcome_frame()))
        await ws.wait_closed()

    async with websockets.serve(welcome_only_the_second, "127.0.0.1", 0) as srv:
        url = f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}"
        store = MemoryTokenStore(Tokens(ACCESS, None, time.time() + 300, 300))
        async with ApiClient(url, store=store) as api:
            socket = api.socket(open_timeout=0.5, renew=False, **FAST)
            socket.start()
            try:
                first = await asyncio.wait_for(accepted.get(), 5)
                await asyncio.wait_for(first.wait_closed(), 5)
                assert first.close_code == 1000  # closed by the client
                await socket.wait_live(5)
                assert socket.stats.connects == 1
            finally:
                await socket.close()


BAD_SHAPES = {
    "an empty object": {},
    "a list": [],
    "an HTML page": b"<html>maintenance</html>",
    "a number": {"ticket": 12345, "revoked": "1"},
    "empty": {"ticket": "", "revoked": None},
}


@pytest.mark.parametrize("body", BAD_SHAPES.values(), ids=BAD_SHAPES.keys())
async def test_a_ticket_answer_of_the_wrong_shape_is_retried_by_the_socket(body):
    """`POST /api/auth/ticket` answered 200 with something that is no
    ticket (a proxy's page, a broken server) raised a raw KeyError or
    TypeError, and a ticket socket stopped for good as a client bug. It is
    the transient `bad_response`, as a malformed login answer: `ticket()`
    raises it, and the socket tries again, live once a ticket comes."""

    async def welcome(ws):
        await ws.send(json.dumps(welcome_frame()))
        await ws.wait_closed()

    ticket = ("POST", "/api/auth/ticket")
    routes = {ticket: [(200, body), (200, body), (200, {"ticket": TICKET_SECRET})]}
    async with websockets.serve(welcome, "127.0.0.1", 0) as srv:
        ws_url = f"ws://127.0.0.1:{srv.sockets[0].getsockname()[1]}/ws/"
        with http_origin(api_stub(routes)) as origin:
            store = MemoryTokenStore(Tokens(ACCESS, None, time.time() + 300, 300))
            async with ApiClient(origin, store=store) as api:
                with pytest.raises(AuthSocketError) as refused:
                    await api.ticket()
                assert (refused.value.code, refused.value.transient) == (
                    "bad_response",
                    True,
                )
                socket = api.socket(transport="ticket", ws_url=ws_url, **FAST)
                try:
                    await socket.wait_live(5)
                finally:
                    await socket.close()


@pytest.mark.parametrize("body", BAD_SHAPES.values(), ids=BAD_SHAPES.keys())
async def test_a_revoke_answer_of_the_wrong_shape_is_a_bad_response(body):
    """`revoke_user` answers the count the server revoked; an answer
    without an integer one is the server's (or a proxy's) fault, raised as
    the transient `bad_response`, not a KeyError or TypeError."""
    revoke = ("POST", "/api/server/users/1/revoke")
    with http_origin(api_stub({revoke: [(200, body)]})) as origin:
        async with ServerClient(origin, "ask_key") as backend:
            with pytest.raises(AuthSocketError) as refused:
                await backend.revoke_user(1)
    assert (refused.value.code, refused.value.transient) == ("bad_response", True)


class UnwritableStore(MemoryTokenStore):
    """A store whose saves fail as a full disk would (not an AuthSocketError)."""

    def save(self, tokens):
        raise OSError(28, "No space left on device")


async def test_an_unexpected_error_of_the_renewer_stops_the_socket():
    """The renewer caught only AuthSocketError: anything else (here the
    store failing to save the refreshed tokens) ended it silently, the
    socket left `live` with no renewal to come until the token ran out.
    As on the reader, it stops the socket with `client_error`, loudly."""
    refresh = ("POST", "/api/auth/refresh")
    fresh = {"access": "a.b.c", "refresh": "r2", "expires_in": 300}
    async with ScriptedServer() as server:
        ws_url = server.url.replace("http://", "ws://", 1) + "/ws/"
        with http_origin(api_stub({refresh: [(200, fresh)]})) as origin:
            tokens = Tokens(ACCESS, "r1", time.time() + 300, 300)
            async with ApiClient(origin, store=UnwritableStore(tokens)) as api:
                socket = api.socket(ws_url=ws_url, **FAST)
                try:
                    await socket.wait_live(5)
                    await server.connections[0].send(
                        json.dumps({"type": "auth.expiring"})
                    )
                    with pytest.raises(AuthSocketError) as stopped:
                        async with asyncio.timeout(5):
                            async for _ in socket:
                                pass
                    assert stopped.value.code == "client_error"
                    await asyncio.wait_for(server.connections[0].wait_closed(), 5)
                finally:
                    await socket.close()


async def test_a_login_answered_with_a_token_no_header_can_carry_saves_nothing(caplog):
    """A login answer whose access token is not in the JWT alphabet (here
    with a CR/LF and a header after it) was saved, and every call then
    failed with a raw error quoting it. The login raises `bad_response`,
    saves nothing, and the token is in no message nor log line."""
    access = ACCESS + "\r\nX-Evil: 1"
    login = ("POST", "/api/auth/login")
    answer = {"access": access, "refresh": "r1", "expires_in": 300}
    with http_origin(api_stub({login: [(200, answer)]})) as origin:
        async with ApiClient(origin) as api:
            with (
                caplog.at_level(logging.DEBUG),
                pytest.raises(AuthSocketError) as refused,
            ):
                await api.login("alice", PASSWORD)
            assert api.tokens is None
    assert (refused.value.code, refused.value.transient) == ("bad_response", True)
    assert ACCESS not in str(refused.value) and ACCESS not in caplog.text


NOT_STRICT_JSON = {
    "NaN": {"v": math.nan},
    "infinity": {"v": -math.inf},
    "a lone surrogate": {"text": "\ud800"},
    "no JSON form": {"v": {1, 2}},
}


@pytest.mark.parametrize("data", NOT_STRICT_JSON.values(), ids=NOT_STRICT_JSON.keys())
async def test_publishing_data_that_is_not_strict_json_fails_at_once(data):
    """Python's json writes NaN, infinities and lone surrogates, which the
    server cannot parse: it refuses the frame without its `ref`, and the
    publish waited out its timeout to raise a NetworkError, transient, as
    if the network were at fault. It raises NotJson at once (a retry cannot
    help), sends nothing, and the socket goes on."""
    async with ScriptedServer() as server, scripted_socket(server) as socket:
        with pytest.raises(NotJson) as refused:
            await asyncio.wait_for(socket.publish("room:r", data), 2)
        assert refused.value.code == "not_json" and not refused.value.transient
        assert isinstance(refused.value, ValueError)
        publishing = asyncio.create_task(socket.publish("room:r", {"text": "é"}))
        while True:
            ws, frame, _ = await server.next()
            if frame["type"] == "publish":
                break
        assert frame["data"] == {"text": "é"}  # the bad one never went out
        await ws.send(json.dumps({"type": "published", "id": 1, "ref": frame["ref"]}))
        assert await asyncio.wait_for(publishing, 5) == 1
        assert socket.live


class Drip(LocalTcpServer):
    """An HTTP server that answers 200 and then its body a byte at a time,
    each well within any read timeout, never to the end."""

    async def _serve(self, reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        try:
            for _ in range(1000):
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(0.05)
        except OSError:
            pass  # the client gave up: what the test waits for
        finally:
            writer.close()


async def test_an_api_timeout_bounds_the_whole_call():
    """`ApiClient(timeout=…)` was httpx's timeout, which bounds each read:
    a server dripping its answer held the call (and a socket's refresh or
    diagnosis) as long as it liked. The timeout bounds the call: past it,
    the client's NetworkError."""
    store = MemoryTokenStore(Tokens(ACCESS, None, time.time() + 300, 300))
    async with Drip() as drip, ApiClient(drip.url, store=store, timeout=0.5) as api:
        started = time.monotonic()
        with pytest.raises(NetworkError) as failed:
            async with asyncio.timeout(5):
                await api.me()
        assert time.monotonic() - started < 2
        assert failed.value.transient


def gzipped_list(size: int) -> bytes:
    """A JSON list `size` bytes long (spaces inside), gzipped: about a
    thousandth of that on the wire."""
    return gzip.compress(b"[" + b" " * (size - 2) + b"]", compresslevel=9)


class GzipStub(ApiStub):
    """An ApiStub whose answers say they are gzipped (the routes' bodies are),
    each with a `Retry-After` that only a 429 means anything by."""

    def answer(self, status, body=b"", content_type=None, headers=None):
        gzipped = {"Content-Encoding": "gzip", "Retry-After": "7"}
        super().answer(status, body, content_type, gzipped)


async def test_an_http_answer_over_the_cap_is_a_bad_response():
    """An answer was read whole: 254 KiB of gzip inflating to 256 MiB took
    564 MiB of memory in `me()`. The body is read as it comes, decoded, and
    no further than `MAX_ANSWER_BYTES`: a success beyond is the transient
    `bad_response`; an error answer beyond is judged by its status, as an
    error page that is not JSON, its `Retry-After` kept."""
    bomb = gzipped_list(MAX_ANSWER_BYTES + 1)
    routes = {
        ("GET", "/api/me"): [(200, bomb)],
        ("POST", "/api/auth/ticket"): [(429, bomb)],
    }
    store = MemoryTokenStore(Tokens(ACCESS, None, time.time() + 300, 300))
    with http_origin(type("Stub", (GzipStub,), {"routes": routes})) as origin:
        async with ApiClient(origin, store=store) as api:
            with pytest.raises(AuthSocketError) as refused:
                await asyncio.wait_for(api.me(), 10)
            with pytest.raises(ApiError) as throttled:
                await asyncio.wait_for(api.ticket(), 10)
    assert (refused.value.code, refused.value.transient) == ("bad_response", True)
    assert str(MAX_ANSWER_BYTES) in str(refused.value)
    assert (throttled.value.status, throttled.value.retry_after) == (429, 7.0)


async def test_an_http_answer_up_to_the_cap_is_read_whole():
    """`max_answer_bytes` (an ApiClient option, for a server whose history
    pages are bigger) counts decoded bytes: an answer of exactly that many
    is read and parsed, one byte more is `bad_response`."""
    routes = {
        ("GET", "/api/me"): [(200, gzipped_list(1000)), (200, gzipped_list(1001))]
    }
    store = MemoryTokenStore(Tokens(ACCESS, None, time.time() + 300, 300))
    with http_origin(type("Stub", (GzipStub,), {"routes": routes})) as origin:
        async with ApiClient(origin, store=store, max_answer_bytes=1000) as api:
            assert await asyncio.wait_for(api.me(), 10) == []
            with pytest.raises(AuthSocketError) as refused:
                await asyncio.wait_for(api.me(), 10)
    assert refused.value.code == "bad_response"
