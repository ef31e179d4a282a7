"""A real nginx with the project's config in front of several daphne processes."""

import asyncio
import signal
import time

import pytest
import websockets

from .client import (
    close_code,
    connect,
    http,
    login,
    recv_json,
    recv_until,
    send_json,
    subscribe,
    ticket,
)
from .conftest import DEMO_PASSWORD, start_servers
from .processes import NginxProcess

pytestmark = [pytest.mark.services, pytest.mark.e2e, pytest.mark.timeout(120)]


@pytest.mark.asyncio
async def test_login_and_websocket_upgrade_work_through_nginx(proxy, cluster):
    alice = await login(proxy.http, "alice", DEMO_PASSWORD)
    one = await ticket(proxy.http, alice["access"])
    ws, welcome = await connect(proxy.ws, ticket=one)
    try:
        assert welcome["user"]["username"] == "alice"
        await send_json(ws, {"type": "ping", "ref": 7})
        assert await recv_until(ws, lambda f: f["type"] == "pong") == {
            "type": "pong",
            "ref": 7,
        }
    finally:
        await ws.close()
    token_socket, _ = await connect(proxy.ws, token=alice["access"])
    await token_socket.close()

    status, health = await http("GET", f"{proxy.http}/healthz")
    assert (status, health) == (200, {"status": "ok"})

    # The query string never reaches nginx's logs, daphne's logs say /ws/ only.
    logs = proxy.logs()
    assert "GET /ws/ HTTP/1.1" in logs
    for secret in (one, alice["access"], alice["refresh"], DEMO_PASSWORD):
        assert secret not in logs
        for server in cluster:
            assert secret not in server.output


@pytest.mark.asyncio
async def test_a_forged_forwarded_for_header_is_replaced_by_nginx(proxy, cluster):
    # daphne --proxy-headers believes the left-most X-Forwarded-For address;
    # nginx overwrites the header, so a client cannot pick the address that
    # throttles and logs see.
    for _ in range(2):  # least_conn: reach both processes
        status, _ = await http(
            "GET", f"{proxy.http}/healthz", headers={"X-Forwarded-For": "203.0.113.9"}
        )
        assert status == 200
    for server in cluster:
        assert "203.0.113.9" not in server.output
    assert any("127.0.0.1:0 " in server.output for server in cluster)


@pytest.fixture
def drained_pair(deploy_env, log_dir, nginx_available, tmp_path):
    """Fresh processes A and B behind their own nginx, for a test that stops A."""
    a, b = start_servers(deploy_env, log_dir, "drain-a", "drain-b")
    nginx = NginxProcess(tmp_path / "nginx", [a.port, b.port])
    try:
        nginx.start()
        yield a, b, nginx
    finally:
        nginx.stop()
        a.stop()
        b.stop()


@pytest.mark.asyncio
async def test_sigterm_closes_only_that_process_sockets_with_4503_and_they_reconnect_through_nginx(
    drained_pair,
):
    a, b, nginx = drained_pair
    alice = await login(nginx.http, "alice", DEMO_PASSWORD)
    token = alice["access"]
    # Enough sockets through nginx that least_conn puts some on each process.
    sockets = [(await connect(nginx.ws, token=token))[0] for _ in range(6)]
    a_mark = len(a.lines)
    a.signal(signal.SIGTERM)

    async def outcome(ws):
        """4503 → reconnect through nginx; still open → it was on B."""
        try:
            await send_json(ws, {"type": "ping"})
            await recv_until(ws, lambda f: f["type"] == "pong", timeout=3)
        except websockets.ConnectionClosed:
            code = ws.close_code
            again, welcome = await connect(nginx.ws, token=token)
            await again.close()
            return code, welcome["type"]
        await ws.close()
        return None, None

    drain = await asyncio.to_thread(
        a.wait_for, r"closing (\d+) WebSocket\(s\) with 4503", 10, a_mark
    )
    results = await asyncio.gather(*(outcome(ws) for ws in sockets))
    closed = [(code, welcome) for code, welcome in results if code is not None]
    assert closed, "no socket was on the stopped process: least_conn did not spread"
    assert len(closed) < len(sockets), "sockets on B were closed too"
    assert closed == [(4503, "welcome")] * len(closed)
    assert int(drain.group(1)) == len(closed)
    assert a.wait_exit(15) == 0
    # Reconnecting clients hit the stopped upstream first; nginx's error log
    # would quote "GET /ws/?token=..." for that, which is why it is at crit.
    assert token not in nginx.logs()


@pytest.mark.asyncio
async def test_sigterm_closes_sockets_with_4503_and_clients_resume_elsewhere_losing_nothing(
    drained_pair,
):
    a, b, nginx = drained_pair
    alice = await login(nginx.http, "alice", DEMO_PASSWORD)
    token = alice["access"]

    status, first = await http(
        "POST", f"{b.http}/api/rooms/lobby/messages", {"data": {"n": 0}}, token=token
    )
    assert status == 201, first
    start_id = first["id"]

    # Enough sockets through nginx that least_conn puts some on each process.
    clients = []
    for _ in range(6):
        ws, _ = await connect(nginx.ws, token=token)
        assert (await subscribe(ws, "room:lobby", since=start_id))[
            "type"
        ] == "subscribed"
        clients.append(ws)
    total = 30
    expected = list(range(start_id + 1, start_id + 1 + total))
    published = asyncio.Event()
    a_mark = len(a.lines)

    async def publish():
        for n in range(1, total + 1):
            status, body = await http(
                "POST",
                f"{b.http}/api/rooms/lobby/messages",
                {"data": {"n": n}},
                token=token,
            )
            assert status == 201, body
            if n == 5:
                a.signal(signal.SIGTERM)
        published.set()

    async def follow(ws):
        """Read the lobby; on a close, reconnect through nginx with `since`."""
        seen, closes = [], []
        while len(seen) < total:
            try:
                frame = await recv_json(ws, timeout=10)
            except websockets.ConnectionClosed:
                closes.append(ws.close_code)
                ws, _ = await connect(nginx.ws, token=token)
                since = seen[-1] if seen else start_id
                answer = await subscribe(ws, "room:lobby", since=since)
                assert answer["type"] == "subscribed", answer
                continue
            if frame["type"] == "message" and frame["stream"] == "room:lobby":
                seen.append(frame["id"])
        await ws.close()
        return seen, closes

    publisher = asyncio.ensure_future(publish())
    results = await asyncio.wait_for(
        asyncio.gather(*(follow(ws) for ws in clients)), timeout=60
    )
    await asyncio.wait_for(publisher, 10)

    for seen, _ in results:
        assert seen == expected  # every message, once, in order
    closes = [code for _, codes in results for code in codes]
    assert closes, "no socket was on the stopped process: least_conn did not spread"
    assert set(closes) == {4503}
    assert len(closes) < len(clients), "sockets on B were closed too"

    assert a.wait_exit(15) == 0
    drain = a.wait_for(r"closing (\d+) WebSocket\(s\) with 4503", 1, start=a_mark)
    assert int(drain.group(1)) == len(closes)


@pytest.mark.asyncio
async def test_readyz_follows_redis_and_sockets_elsewhere_survive(
    own_redis, deploy_env, log_dir, cluster
):
    a, _ = cluster
    env = {**deploy_env, "REDIS_URL": own_redis.url}
    (c,) = start_servers(env, log_dir, "readyz-c")
    try:
        alice = await login(a.http, "alice", DEMO_PASSWORD)
        elsewhere, _ = await connect(a.ws, token=alice["access"])
        on_c, _ = await connect(c.ws, token=alice["access"])

        async def still_open(ws):
            await send_json(ws, {"type": "ping"})
            return (await recv_until(ws, lambda f: f["type"] == "pong"))["type"]

        status, body = await http("GET", f"{c.http}/readyz")
        assert (status, body["checks"]) == (
            200,
            {"database": "ok", "channel_layer": "ok"},
        )

        own_redis.stop()
        status, body = await http("GET", f"{c.http}/readyz")
        assert status == 503
        assert body["status"] == "unavailable"
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["channel_layer"] != "ok"
        status, _ = await http("GET", f"{c.http}/healthz")
        assert status == 200  # alive, just not ready
        # The socket already open on C rides out the outage (it only loses
        # cross-process delivery); so does the one on A, which uses another Redis.
        assert await still_open(on_c) == "pong"
        assert await still_open(elsewhere) == "pong"

        own_redis.start()
        status, body = await readyz_until(c, 200, timeout=10)
        assert status == 200, body

        assert await still_open(on_c) == "pong"
        assert await still_open(elsewhere) == "pong"
        await on_c.close()
        await elsewhere.close()
    finally:
        c.stop()


async def readyz_until(server, wanted: int, timeout: float):
    """Probe /readyz until it answers `wanted` (a probe is the only signal)."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = await http("GET", f"{server.http}/readyz")
        if status == wanted or time.monotonic() > deadline:
            return status, body
        await asyncio.sleep(0.1)


@pytest.mark.asyncio
async def test_closed_socket_reports_4503_even_when_idle(drained_pair):
    a, _, _ = drained_pair
    alice = await login(a.http, "alice", DEMO_PASSWORD)
    ws, _ = await connect(a.ws, token=alice["access"])
    started = time.monotonic()
    a.signal(signal.SIGTERM)
    assert await close_code(ws, timeout=5) == 4503
    assert time.monotonic() - started < 2
    assert a.wait_exit(10) == 0
