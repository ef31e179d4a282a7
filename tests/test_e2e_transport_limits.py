"""What autobahn decides before the application, seen through `authsocket.serve`.

Parts of the wire contract (docs/protocol.md §4.1, §4.3) that only a real
daphne shows, because autobahn acts on them before any ASGI code runs:

* every message over AUTHSOCKET_MAX_MESSAGE_BYTES closes 4413, also one so big
  that autobahn cuts it at the frame header (it would close 1009), and the
  close-code metric counts that cut too;
* `Origin: null`, an Origin without a host, an empty and a repeated Origin
  reach realtime/origin.py, which refuses them 403 and logs why (autobahn
  would answer 400 with nothing logged);
* a handshake autobahn refuses itself does not quote the client's token
  back in its status line, and two token subprotocols are refused 403;
* a POST body reaches the application, which answers JSON, even one Twisted
  could not parse.

The server is module-scoped (one start for every test), on a copy of the
migrated demo database like `e2e_env`'s.
"""

import asyncio
import contextlib
import json
import re
import socket

import pytest
import websockets

from tests.http import handshake_status_line, login, sample, scrape
from tests.servers import demo_server
from tests.wsclient import DEMO_PASSWORD

pytestmark = [pytest.mark.e2e]

LIMIT = 1000  # AUTHSOCKET_MAX_MESSAGE_BYTES of the server below
METRICS_TOKEN = "e2e-transport-metrics-0123456789abcdef"
TIMEOUT = 10
ORIGIN_REFUSED_LOG = r"websocket refused: origin not allowed"


@pytest.fixture(scope="module")
def server(migrated_template, tmp_path_factory):
    """One `python -m authsocket.serve` with a small message limit."""
    with demo_server(
        migrated_template,
        tmp_path_factory.mktemp("transport-limits"),
        AUTHSOCKET_MAX_MESSAGE_BYTES=str(LIMIT),
        AUTHSOCKET_METRICS_TOKEN=METRICS_TOKEN,
    ) as server:
        yield server


@pytest.fixture(scope="module")
def token(server) -> str:
    return login(server.http, "alice", DEMO_PASSWORD)["access"]


def ping_of(size: int) -> str:
    """A `ping` frame of exactly `size` bytes of UTF-8."""
    compact = {"separators": (",", ":")}
    empty = json.dumps({"type": "ping", "pad": ""}, **compact)
    frame = json.dumps({"type": "ping", "pad": "x" * (size - len(empty))}, **compact)
    assert len(frame.encode()) == size
    return frame


async def close_code_after_sending(server, token: str, text: str) -> int | None:
    """Send `text` on a fresh socket; the close code the server sends."""
    async with websockets.connect(
        f"{server.ws}?token={token}", open_timeout=TIMEOUT, max_queue=None
    ) as ws:
        welcome = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        assert welcome["type"] == "welcome"
        # The server may close while the client is still writing.
        with contextlib.suppress(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.send(text), TIMEOUT)
        try:
            async with asyncio.timeout(TIMEOUT):
                while True:
                    frame = json.loads(await ws.recv())
                    assert frame["type"] != "pong", "a message over the limit answered"
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None


@pytest.mark.parametrize(
    "size",
    [LIMIT + 1, 3 * LIMIT, 1024 * 1024],
    ids=["limit+1", "3x-limit", "1MiB"],
)
async def test_every_message_over_the_limit_closes_4413(server, token, size):
    assert await close_code_after_sending(server, token, ping_of(size)) == 4413


def counted(server, series: str) -> float:
    """The server's current value of one /metrics series."""
    status, text = scrape(server, f"Bearer {METRICS_TOKEN}")
    assert status == 200
    return sample(text, series)


def test_the_transports_4413_is_counted_like_the_consumers(server, token):
    """A message autobahn cuts never reaches the consumer, which counts the
    close codes it sends: the transport's cut is counted where it happens."""
    series = 'authsocket_close_codes_total{code="4413"}'
    before = counted(server, series)
    huge = ping_of(1024 * 1024)  # over twice the limit: the transport's cut
    assert asyncio.run(close_code_after_sending(server, token, huge)) == 4413
    assert counted(server, series) == before + 1


async def test_a_message_of_exactly_the_limit_is_answered(server, token):
    async with websockets.connect(
        f"{server.ws}?token={token}", open_timeout=TIMEOUT
    ) as ws:
        welcome = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        assert welcome["type"] == "welcome"
        await ws.send(ping_of(LIMIT))
        frame = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        assert frame["type"] == "pong", frame


def handshake_status(server, path: str, headers: list[tuple[str, str]]) -> str:
    """The status line answering a raw WebSocket handshake (any header bytes)."""
    lines = (f"{name}: {value}".rstrip().encode("latin-1") for name, value in headers)
    return handshake_status_line(server.port, path, *lines).decode("latin-1")


@pytest.mark.parametrize(
    "origins",
    [["null"], ["localhost"], [""], ["{allowed}", "{allowed}"]],
    ids=["null", "no-scheme", "empty", "repeated"],
)
def test_refused_origin_is_403_with_a_logged_reason(server, token, origins):
    # With a valid token: only the Origin check can refuse the handshake.
    allowed = f"http://127.0.0.1:{server.port}"
    mark = len(server.lines)
    headers = [("Origin", origin.format(allowed=allowed)) for origin in origins]
    status = handshake_status(server, f"/ws/?token={token}", headers)
    assert re.match(r"HTTP/1\.1 403\b", status), status
    server.wait_for(ORIGIN_REFUSED_LOG, TIMEOUT, start=mark)
    assert token not in server.output


def test_an_allowed_origin_still_opens_the_socket(server, token):
    # autobahn reads every Origin as "null" now: that must not refuse any.
    origin = [("Origin", f"http://127.0.0.1:{server.port}")]
    status = handshake_status(server, f"/ws/?token={token}", origin)
    assert re.match(r"HTTP/1\.1 101\b", status), status


def test_a_refused_handshake_never_quotes_the_token_back(server, token):
    # autobahn refuses a repeated subprotocol itself (it said 400); its reason
    # quoted it. Two token subprotocols are a refused credential: 403, counted
    # as the application counts two different ones, though it never sees it.
    offer = f"authsocket.v1, authsocket.token.{token}, authsocket.token.{token}"
    series = (
        'authsocket_handshakes_total{outcome="refused",'
        'reason="bad_credential",transport="none"}'
    )
    before = counted(server, series)
    mark = len(server.lines)
    status = handshake_status(server, "/ws/", [("Sec-WebSocket-Protocol", offer)])
    assert re.match(r"HTTP/1\.1 403 Forbidden$", status), status
    assert counted(server, series) == before + 1
    # Its reason is logged (§4.1), without the part that quotes the request.
    server.wait_for(
        r"websocket refused by the transport \(403\): duplicate protocol",
        TIMEOUT,
        start=mark,
    )
    assert token not in server.output


def raw_answer(server, request: bytes) -> bytes:
    """What the server answers `request`, sent as it is, up to its close."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):  # bounded by the socket's timeout
            answer += chunk
    return answer


def test_a_multipart_body_twisted_cannot_parse_reaches_the_application(server):
    # Twisted parsed POST bodies itself and answered this one an empty 400.
    request = (
        "POST /api/auth/login HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\n"
        "Content-Type: multipart/form-data\r\n"
        "Content-Length: 1\r\nConnection: close\r\n\r\nx"
    ).encode()
    head, _, body = raw_answer(server, request).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 415"), head
    assert json.loads(body)["code"] == "unsupported_media_type"


def chunked_post(server, path: str, body: bytes, token: str | None = None) -> tuple:
    """POST `body` in two chunks (no Content-Length): (status, JSON answer)."""
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    half = len(body) // 2
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:half], body[half:])
    )
    request = (
        (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n{auth}"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        + chunks
        + b"0\r\n\r\n"
    )
    head, _, rest = raw_answer(server, request).partition(b"\r\n\r\n")
    status = int(head.split()[1])
    return status, (json.loads(rest) if rest else None)


def test_a_chunked_body_is_read_like_any_other(server):
    """daphne hands a chunked body on with no Content-Length, which DRF took
    for no body: a chunked login was 400, a chunked logout with NaN 204."""
    credentials = {"username": "alice", "password": DEMO_PASSWORD}
    status, answer = chunked_post(
        server, "/api/auth/login", json.dumps(credentials).encode()
    )
    assert status == 200, answer
    status, answer = chunked_post(
        server, "/api/auth/logout", b'{"all": NaN}', token=answer["access"]
    )
    assert (status, answer["code"]) == (400, "parse_error")
