"""A real `python -m authsocket.serve` process: limits and draining (no services)."""

import asyncio
import base64
import contextlib
import os
import re
import resource
import signal
import socket
import time
import uuid
from pathlib import Path

import pytest
import websockets

from tests.services import unavailable

from .client import close_code, connect, http, login, recv_until, send_json
from .conftest import DEMO_PASSWORD, start_servers

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def small_limit_server(sqlite_env, log_dir):
    env = {**sqlite_env, "AUTHSOCKET_MAX_MESSAGE_BYTES": "1000"}
    (server,) = start_servers(env, log_dir, "limits")
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.asyncio
async def test_message_just_over_the_limit_reaches_the_consumer_and_gets_4413(
    small_limit_server,
):
    alice = await login(small_limit_server.http, "alice", DEMO_PASSWORD)
    ws, _ = await connect(small_limit_server.ws, token=alice["access"])
    await send_json(ws, {"type": "ping", "pad": "x" * 1000})
    assert await close_code(ws, timeout=5) == 4413


@pytest.mark.asyncio
async def test_message_within_the_limit_is_answered(small_limit_server):
    alice = await login(small_limit_server.http, "alice", DEMO_PASSWORD)
    ws, _ = await connect(small_limit_server.ws, token=alice["access"])
    try:
        await send_json(ws, {"type": "ping", "pad": "x" * 900})
        assert (await recv_until(ws, lambda f: f["type"] == "pong"))["type"] == "pong"
    finally:
        await ws.close()


@pytest.mark.asyncio
async def test_message_over_twice_the_limit_is_cut_by_the_transport(small_limit_server):
    # daphne runs with --websocket-max-message-size = 2 × 1000: autobahn cuts
    # it before buffering it for the application, with the contract's 4413
    # (autobahn's own code would be 1009).
    alice = await login(small_limit_server.http, "alice", DEMO_PASSWORD)
    ws, _ = await connect(small_limit_server.ws, token=alice["access"])
    with contextlib.suppress(websockets.ConnectionClosed):
        await ws.send("x" * 2001)
    assert await close_code(ws, timeout=5) == 4413


@pytest.mark.asyncio
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_signal_closes_every_socket_with_4503_then_exits_cleanly(
    sqlite_env, log_dir, signum
):
    (server,) = start_servers(sqlite_env, log_dir, f"drain-{signum.name.lower()}")
    try:
        alice = await login(server.http, "alice", DEMO_PASSWORD)
        sockets = [
            (await connect(server.ws, token=alice["access"]))[0] for _ in range(3)
        ]
        started = time.monotonic()
        server.signal(signum)
        for ws in sockets:
            assert await close_code(ws, timeout=5) == 4503
        assert time.monotonic() - started < 2
        assert server.wait_exit(10) == 0
        assert (
            f"{signum.name}: stopped listening, closing 3 WebSocket(s)" in server.output
        )
        # It stopped listening: a new connection is refused, not half-served.
        with pytest.raises(OSError):
            await connect(server.ws, token=alice["access"], timeout=2)
    finally:
        server.stop()


def open_without_answering_closes(server, token: str) -> socket.socket:
    """A WebSocket opened by hand that will never answer the close handshake:
    its application instance lives on until autobahn gives up waiting."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws/?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)  # bounded by the socket's timeout
        assert chunk, answer
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 101"), answer
    return sock


@pytest.mark.asyncio
async def test_a_second_signal_during_the_drain_stops_without_an_error(
    sqlite_env, log_dir
):
    # A socket that never answers the close keeps the drain waiting; a
    # second signal then stops at once, cleanly.
    (server,) = start_servers(sqlite_env, log_dir, "two-signals")
    try:
        alice = await login(server.http, "alice", DEMO_PASSWORD)
        with open_without_answering_closes(server, alice["access"]):
            server.signal(signal.SIGTERM)
            server.wait_for("SIGTERM: stopped listening", timeout=10)
            server.signal(signal.SIGTERM)
            assert server.wait_exit(10) == 0
        assert "Second SIGTERM: stopping now" in server.output
        assert "Traceback" not in server.output, server.output
    finally:
        server.stop()


@pytest.mark.asyncio
async def test_query_strings_never_reach_the_access_log(small_limit_server):
    # daphne itself logs an HTTP request's full target; authsocket.serve keeps
    # the path only (docs/protocol.md §6).
    server = small_limit_server
    secret = f"eyJ{uuid.uuid4().hex}.x.y"
    mark = len(server.lines)
    await http("GET", f"{server.http}/ws/?token={secret}")
    await http("GET", f"{server.http}/api/me?ticket={secret}")
    await asyncio.to_thread(server.wait_for, r'"GET /api/me', 5, mark)
    assert '"GET /ws/' in server.output
    assert secret not in server.output


@contextlib.contextmanager
def soft_open_file_limit(soft: int):
    """Processes started inside inherit this soft limit; the old one comes back."""
    old_soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= soft:
        unavailable(f"the hard open-file limit {hard} leaves nothing to raise")
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        yield hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (old_soft, hard))


def test_start_raises_the_open_file_limit_and_logs_it_once(sqlite_env, log_dir):
    env = {**sqlite_env, "AUTHSOCKET_EXPECTED_SOCKETS": "100"}  # no warning
    with soft_open_file_limit(512):
        (server,) = start_servers(env, log_dir, "nofile")
    try:
        limits = Path(f"/proc/{server.process.pid}/limits").read_text()
        soft, hard = re.search(r"Max open files\s+(\S+)\s+(\S+)", limits).groups()
        assert soft == hard != "512"
        logged = [line for line in server.output.splitlines() if "open-file" in line]
        assert len(logged) == 1
        assert "512 at start" in logged[0]
        assert "WARNING" not in logged[0]
    finally:
        server.stop()
