"""A tiny JSON-over-HTTP client for end-to-end tests, and the small HTTP
servers tests stand in front of or beside ours (stdlib only)."""

import base64
import contextlib
import http.server
import json
import os
import socket
import threading
import urllib.error
import urllib.request


def call(method: str, url: str, body=None, token: str | None = None, headers=None):
    """Returns `(status, parsed JSON or None, headers)`; never raises on 4xx/5xx."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            status, raw, response_headers = (
                response.status,
                response.read(),
                response.headers,
            )
    except urllib.error.HTTPError as error:
        status, raw, response_headers = error.code, error.read(), error.headers
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:  # an HTML error page: keep it for the assertion message
        parsed = raw.decode(errors="replace")[:500]
    return status, parsed, response_headers


def login(base: str, username: str, password: str) -> dict:
    status, body, _ = call(
        "POST", f"{base}/api/auth/login", {"username": username, "password": password}
    )
    assert status == 200, body
    return body


def scrape(server, authorization: str | None) -> tuple[int, str]:
    """`GET /metrics` of a test server: (status, body text)."""
    request = urllib.request.Request(f"{server.http}/metrics")
    if authorization:
        request.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def sample(text: str, line_start: str) -> float:
    """The value of the first Prometheus line starting so; 0 when absent."""
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def handshake_request(port: int, path: str, *headers: bytes) -> bytes:
    """A raw WebSocket handshake to 127.0.0.1:`port`, with these header lines
    sent as they are (any bytes)."""
    key = base64.b64encode(os.urandom(16))
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode()
        + b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
        + b"Sec-WebSocket-Key: "
        + key
        + b"\r\nSec-WebSocket-Version: 13\r\n"
        + b"".join(header + b"\r\n" for header in headers)
        + b"\r\n"
    )


def handshake_status_line(port: int, path: str, *headers: bytes) -> bytes:
    """The status line answering `handshake_request(port, path, *headers)`."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(handshake_request(port, path, *headers))
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)  # bounded by the socket's timeout
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n", 1)[0]


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """A test server's request handler: answers through `answer()`, logs nothing."""

    def answer(
        self,
        status: int,
        body: bytes = b"",
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def http_origin(handler: type[http.server.BaseHTTPRequestHandler]):
    """Serve `handler` on a free port of 127.0.0.1 in a thread; yields its origin."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
