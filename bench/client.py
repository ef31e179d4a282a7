"""Client primitives of the load generator: WebSocket opens per transport,
a tiny HTTP client, and the statistics every scenario reports.

Kept free of scenario logic so each scenario reads as its measurement only.
"""

import asyncio
import json
import math
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from authsocket_client import ApiClient, ApiError, MemoryTokenStore, Tokens

# docs/protocol.md §4.1 transports, in the order the server considers them.
TRANSPORTS = ("subprotocol", "header", "ticket", "token")
SUBPROTOCOL = "authsocket.v1"
TOKEN_SUBPROTOCOL_PREFIX = "authsocket.token."
OPEN_TIMEOUT_S = 10.0
FRAME_TIMEOUT_S = 10.0
HTTP_TIMEOUT_S = 10.0


class Refused(Exception):
    """The server refused the upgrade (docs/protocol.md §4.1: HTTP 403 from daphne)."""

    def __init__(self, status: int):
        super().__init__(f"handshake refused with HTTP {status}")
        self.status = status


class FeatureMissing(Exception):
    """The server lacks an endpoint or frame a scenario needs: report n/a."""


@dataclass
class Target:
    """Where the server listens, and the Origin every handshake sends."""

    ws_url: str
    origin: str | None = None

    @property
    def host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.ws_url)
        return parts.hostname, parts.port

    @property
    def http_origin(self) -> str:
        host, port = self.host_port
        return f"http://{host}:{port}"


async def http_exchange(
    target: Target, request: bytes, timeout: float = HTTP_TIMEOUT_S
) -> bytes:
    """Sends one raw HTTP/1.0 request and returns the whole raw reply (EOF ends it)."""
    host, port = target.host_port
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(request)
            return await reader.read()
        finally:
            writer.close()


async def http_request(
    target: Target,
    method: str,
    path: str,
    *,
    bearer: str | None = None,
    body: dict | None = None,
) -> tuple[int, dict | None]:
    """Sends one HTTP/1.0 request and returns (status, JSON body or None).

    HTTP/1.0 keeps the reply free of chunking and ends it at EOF, which is all
    a ten-line client needs; it adds no dependency to the load generator.
    """
    host, port = target.host_port
    payload = json.dumps(body).encode() if body is not None else b""
    lines = [f"{method} {path} HTTP/1.0", f"Host: {host}:{port}"]
    if bearer:
        lines.append(f"Authorization: Bearer {bearer}")
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode() + payload
    raw = await http_exchange(target, request)
    head, _, content = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    try:
        return status, json.loads(content) if content else None
    except ValueError:
        return status, None


def api_client(target: Target, token: str) -> ApiClient:
    """The project's Python client, signed in with a minted access token.

    Used for the calls around a measurement (room membership, logout). The
    ticket fetch inside the timed handshake loop stays on `http_request`: the
    load generator's hot path stays lean and comparable with earlier runs.
    Make it before the clock starts: creating its HTTP client costs a few ms.
    """
    store = MemoryTokenStore(Tokens(token, None, time.time() + 3600, 3600.0))
    return ApiClient(target.http_origin, store=store)


async def api_failure(api: ApiClient, method: str, path: str) -> int | None:
    """Makes one call; None when it succeeded, else the HTTP status (0: none)."""
    try:
        await api.request(method, path)
    except ApiError as exc:
        return exc.status or 0
    return None


async def fetch_ticket(target: Target, token: str) -> str:
    """Trades an access token for a one-time ticket (docs/protocol.md §2, §3)."""
    status, body = await http_request(target, "POST", "/api/auth/ticket", bearer=token)
    if status == 404:
        raise FeatureMissing("POST /api/auth/ticket answers 404")
    if status != 200 or not body or "ticket" not in body:
        raise RuntimeError(f"ticket request failed with HTTP {status}")
    return body["ticket"]


async def ws_open(
    target: Target, token: str, transport: str, timeout: float = OPEN_TIMEOUT_S
) -> ClientConnection:
    """Opens a socket presenting `token` over `transport` (docs/protocol.md §4.1)."""
    url, headers, subprotocols = target.ws_url, {}, None
    if transport == "token":
        url = f"{url}?token={token}"
    elif transport == "ticket":
        url = f"{url}?ticket={await fetch_ticket(target, token)}"
    elif transport == "header":
        headers["Authorization"] = f"Bearer {token}"
    elif transport == "subprotocol":
        subprotocols = [SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX + token]
    elif transport != "none":
        raise ValueError(f"unknown transport {transport!r}")
    try:
        return await connect(
            url,
            additional_headers=headers,
            subprotocols=subprotocols,
            origin=target.origin,
            open_timeout=timeout,
            close_timeout=FRAME_TIMEOUT_S,
            ping_interval=None,
            compression=None,
            max_size=2**20,
            user_agent_header=None,
        )
    except InvalidStatus as exc:
        raise Refused(exc.response.status_code) from exc


async def recv_json(ws: ClientConnection, timeout: float = FRAME_TIMEOUT_S) -> dict:
    """Receives one text frame as JSON within `timeout` seconds."""
    async with asyncio.timeout(timeout):
        return json.loads(await ws.recv())


async def recv_type(
    ws: ClientConnection, wanted: str, timeout: float = FRAME_TIMEOUT_S
) -> dict:
    """Receives frames until one of type `wanted` arrives, within the timeout.

    Other frames (an `auth.expiring`, a late message) are skipped, never
    mistaken for the answer.
    """
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("type") == wanted:
                return frame
            if frame.get("type") == "error" and frame.get("code") in (
                "unknown_type",
                "bad_request",
            ):
                raise FeatureMissing(f"server answered {frame!r}")
            if frame.get("type") == "error":
                raise RuntimeError(f"server answered {frame!r}")


async def open_welcomed(
    target: Target, token: str, transport: str = "token", timeout: float = 0.0
) -> ClientConnection:
    """Opens a socket and waits for its `welcome` frame (docs/protocol.md §4.2).

    `timeout` bounds the open and the welcome alike; 0 keeps the defaults.
    """
    ws = await ws_open(target, token, transport, timeout or OPEN_TIMEOUT_S)
    try:
        await recv_type(ws, "welcome", timeout or FRAME_TIMEOUT_S)
    except BaseException:
        ws.transport.abort()
        raise
    return ws


async def abort_all(sockets: list[ClientConnection]) -> None:
    """Closes sockets at the end of a scenario, politely but bounded in time."""
    async with asyncio.timeout(FRAME_TIMEOUT_S * 2):
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


def now() -> float:
    """Monotonic seconds: every latency below is a difference of these."""
    return time.perf_counter()


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no samples."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_summary(seconds: list[float], prefix: str = "") -> dict:
    """p50/p95/p99 in milliseconds, rounded for the report."""
    out = {}
    for q in (50, 95, 99):
        value = percentile(seconds, q)
        out[f"{prefix}p{q}_ms"] = None if value is None else round(value * 1000, 2)
    return out


@dataclass
class ErrorTally:
    """Counts failures by kind and keeps a few messages to show in the report."""

    counts: dict = field(default_factory=dict)
    samples: list = field(default_factory=list)

    def add(self, exc: BaseException) -> None:
        kind = type(exc).__name__
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if len(self.samples) < 3:
            self.samples.append(f"{kind}: {exc}"[:200])

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict:
        return {
            "errors": self.total,
            "error_kinds": self.counts,
            "error_samples": self.samples,
        }
