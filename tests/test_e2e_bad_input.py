"""Bad input that daphne itself mishandled, under plain daphne and authsocket.serve.

Each case reached daphne or autobahn before any application code could
answer it, and got a 500, an empty non-JSON 400, a dropped connection or a
traceback in the log (docs/protocol.md §2, §4.1, §4.3: a clear error, never a
500): a Sec-WebSocket-Protocol header that is not ASCII, an extension offer
autobahn cannot parse, a client's Daphne-Root-Path header, a multipart body
Twisted cannot parse (plain daphne), a message over plain daphne's size limit,
a form of more than 1,000 fields, a request or header line over Twisted's
16 KiB. One server of each kind serves the module.
"""

import asyncio
import contextlib
import json
import re
import socket
import urllib.error
import urllib.request

import pytest
import websockets

from tests.http import handshake_status_line, login
from tests.servers import demo_server
from tests.wsclient import DEMO_PASSWORD

pytestmark = [pytest.mark.e2e]

TIMEOUT = 10
LIMIT = 1000  # AUTHSOCKET_MAX_MESSAGE_BYTES of both servers
PLAIN_DAPHNE_LIMIT = 4 * LIMIT  # plain daphne's --websocket-max-message-size


@pytest.fixture(scope="module", params=["daphne", "authsocket.serve"])
def server(request, migrated_template, tmp_path_factory):
    options = ()
    if request.param == "daphne":
        size = str(PLAIN_DAPHNE_LIMIT)
        options = (
            "--websocket-max-message-size",
            size,
            "--websocket-max-frame-size",
            size,
        )
    with demo_server(
        migrated_template,
        tmp_path_factory.mktemp("bad-input"),
        module=request.param,
        options=options,
        AUTHSOCKET_MAX_MESSAGE_BYTES=str(LIMIT),
    ) as server:
        yield server


@pytest.fixture(scope="module")
def token(server) -> str:
    return login(server.http, "alice", DEMO_PASSWORD)["access"]


@pytest.fixture
def no_traceback(server):
    """The test's requests leave no traceback and no 500 in the server's output."""
    mark = len(server.lines)
    yield
    # Logged after whatever the test's requests made the server log.
    with urllib.request.urlopen(f"{server.http}/healthz", timeout=TIMEOUT):
        pass
    server.wait_for(r'"GET /healthz" 200', TIMEOUT, start=mark)
    output = "".join(server.lines[mark:])
    assert "Traceback" not in output
    assert "Exception inside application" not in output
    assert not re.search(r'" 5\d\d ', output), output


def exchange(server, head: bytes, body: bytes = b"") -> bytes:
    """Send a raw request; everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        sock.sendall(head + b"\r\n" + body)
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):  # bounded by the socket's timeout
                answer += chunk
    return answer


def handshake(server, path: str, *headers: bytes) -> bytes:
    """The status line answering a raw WebSocket handshake with these header lines."""
    return handshake_status_line(server.port, path, *headers)


def refused_400(server, path: str, header: bytes, logged: str) -> int:
    """A handshake with `header` is answered 400 and its reason `logged`; the
    server's output line where the handshake began."""
    mark = len(server.lines)
    assert handshake(server, path, header) == b"HTTP/1.1 400 Bad Request"
    server.wait_for(logged, TIMEOUT, start=mark)
    return mark


@pytest.mark.parametrize(
    "offer",
    [b"authsocket.v1, \xe9", b"authsocket.v1, authsocket.token.\xc3\xa9", b"\x80"],
    ids=["latin-1", "utf-8-token", "high-byte"],
)
def test_a_subprotocol_header_that_is_not_ascii_is_refused_400(
    server, token, offer, no_traceback
):
    refused_400(
        server,
        f"/ws/?token={token}",
        b"Sec-WebSocket-Protocol: " + offer,
        r"websocket refused by the transport \(400\): Sec-WebSocket-Protocol is "
        r"not ASCII",
    )


@pytest.mark.parametrize(
    "offer",
    [
        b"permessage-deflate; foo",
        b"permessage-deflate; client_max_window_bits=99",
        b"permessage-deflate; server_max_window_bits=7",
    ],
)
def test_an_extension_offer_autobahn_cannot_parse_never_reaches_the_application(
    server, token, offer, no_traceback
):
    # autobahn refused it only after the application had accepted the
    # socket, whose welcome then raised on the closed connection.
    mark = refused_400(
        server,
        f"/ws/?token={token}",
        b"Sec-WebSocket-Extensions: " + offer,
        r"refused by the transport \(400\): unusable",
    )
    assert "WSCONNECTING" not in "".join(server.lines[mark:])


def test_an_extension_autobahn_does_not_know_is_ignored(server, token, no_traceback):
    offer = b"Sec-WebSocket-Extensions: x-webkit-deflate-frame"
    status = handshake(server, f"/ws/?token={token}", offer)
    assert status == b"HTTP/1.1 101 Switching Protocols"


@pytest.mark.parametrize("root", [b"/elsewhere", b"\xe9", b"/api"])
def test_a_clients_daphne_root_path_header_is_ignored(
    server, token, root, no_traceback
):
    status = handshake(server, f"/ws/?token={token}", b"Daphne-Root-Path: " + root)
    assert status == b"HTTP/1.1 101 Switching Protocols"
    answer = exchange(
        server,
        b"GET /api/me HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        + b"Authorization: Bearer "
        + token.encode()
        + b"\r\n"
        + b"Daphne-Root-Path: "
        + root
        + b"\r\n",
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert json.loads(body)["username"] == "alice"


@pytest.mark.parametrize("body", [b"x", b'{"username": "alice"}'])
def test_a_multipart_body_twisted_cannot_parse_is_answered_json(
    server, body, no_traceback
):
    # Twisted parsed it itself and answered an empty 400 under plain daphne.
    answer = exchange(
        server,
        b"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Content-Type: multipart/form-data; boundary=x\r\n"
        b"Content-Length: %d\r\n" % len(body),
        body,
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 415"), head
    assert json.loads(body)["code"] == "unsupported_media_type"


async def test_a_message_over_the_transport_limit_closes_4413(server, token):
    # Over plain daphne's --websocket-max-message-size autobahn cuts it (it
    # dropped the connection: 1006); under authsocket.serve it is over twice
    # the limit. Either way a 4413 close frame.
    frame = json.dumps({"type": "ping", "pad": "x" * (2 * PLAIN_DAPHNE_LIMIT)})
    async with websockets.connect(
        f"{server.ws}?token={token}", open_timeout=TIMEOUT
    ) as ws:
        assert json.loads(await ws.recv())["type"] == "welcome"
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.send(frame)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            async with asyncio.timeout(TIMEOUT):
                while True:
                    assert json.loads(await ws.recv())["type"] != "pong"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4413


def test_a_form_of_too_many_fields_is_one_log_line(server, no_traceback):
    # Django logged it at ERROR with its traceback: forty lines a request
    # that anyone can send to the admin login.
    with urllib.request.urlopen(f"{server.http}/admin/login/", timeout=TIMEOUT) as page:
        cookie = page.headers["Set-Cookie"].split(";", 1)[0]  # csrftoken=…
    mark = len(server.lines)
    form = b"&".join(b"f%d=1" % i for i in range(1500))
    answer = exchange(
        server,
        b"POST /admin/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Cookie: " + cookie.encode() + b"\r\n"
        b"Content-Length: %d\r\n" % len(form),
        form,
    )
    assert answer.startswith(b"HTTP/1.1 400"), answer[:100]
    server.wait_for(r"WARNING django\.security\.TooManyFieldsSent", TIMEOUT, start=mark)


@pytest.mark.parametrize(
    ("where", "status"),
    [("path", 414), ("query", 414), ("header", 431), ("authorization", 431)],
)
def test_a_line_over_16_kib_is_answered_json(server, where, status, no_traceback):
    # Twisted closed the connection without an answer.
    long = "a" * 20000
    url = {"path": f"/api/{long}", "query": f"/api/me?{long}"}.get(where, "/api/me")
    headers = {"header": {"X-Long": long}, "authorization": {"Authorization": long}}
    request = urllib.request.Request(server.http + url, headers=headers.get(where, {}))
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(request, timeout=TIMEOUT)
    assert answer.value.code == status
    assert answer.value.headers["Content-Type"] == "application/json"
    assert json.loads(answer.value.read())["code"] == "bad_request"
