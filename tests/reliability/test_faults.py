"""Faults on real daphne processes: Redis and the database go away and return.

Redis down: existing sockets stay open, new handshakes are refused (HTTP 403:
no channel layer, no fan-out), revocation still closes sockets through the
database poll, the HTTP API keeps its throttles in process memory, and when
Redis returns, new sockets are welcomed and old ones receive layer messages
again. Database down: handshakes are refused cleanly, logged once, and the
server recovers by itself. A consumer bug closes only its own socket (1011).
"""

import asyncio
import json
import time

import pytest
from channels_redis.core import RedisChannelLayer

from realtime.groups import user_group
from realtime.protocol import CloseCode
from tests.http import call, login
from tests.reliability.services import (
    RedisServer,
    daphne_on_cut_postgres,
    wait_until,
)
from tests.servers import DaphneServer
from tests.wsclient import (
    close_code,
    open_socket,
    ping,
    refusal,
    refused_status,
    serving,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PASSWORD = "authsocket-demo"
CRASH_FRAME = (
    "test.crash"  # tests/reliability/crashing_asgi.py (not imported: it loads the app)
)


async def stays_open(sockets, seconds: float) -> bool:
    """Every socket answers pings for `seconds` (asserting that nothing happens)."""
    deadline = time.monotonic() + seconds
    ref = 0
    while time.monotonic() < deadline:
        for socket in sockets:
            ref += 1
            if not await ping(socket, ref):
                return False
        await asyncio.sleep(0.25)
    return True


@pytest.fixture
def redis():
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def redis_daphne(e2e_env, redis, tmp_path):
    server = DaphneServer(
        {**e2e_env, "REDIS_URL": redis.url}, log_path=tmp_path / "daphne.log"
    ).start()
    yield server
    server.stop()


async def layer_send(redis_url: str, group: str, event: dict) -> None:
    """Send on the channel layer from outside the server (as another process would)."""
    layer = RedisChannelLayer(hosts=[redis_url])
    try:
        await layer.group_send(group, event)
    finally:
        await layer.close_pools()


async def test_redis_outage_keeps_sockets_open_and_revocation_working(
    redis, redis_daphne
):
    server = redis_daphne
    alice = login(server.http, "alice", PASSWORD)
    bob = login(server.http, "bob", PASSWORD)
    a, _ = await open_socket(server, alice["access"])
    b, b_welcome = await open_socket(server, bob["access"])

    redis.stop()
    # channels_redis raises out of receive(); without the guard in
    # realtime.channels_redis_overrides every socket of the process closes with 1011 right here.
    assert await stays_open([a, b], seconds=3), "a socket died with Redis"
    carol = login(server.http, "carol", PASSWORD)  # throttles fall back to memory
    assert await refused_status(server, carol["access"]) == 403
    status, _, _ = call("POST", f"{server.http}/api/auth/logout", token=alice["access"])
    assert status == 204
    assert await close_code(a, timeout=5) == CloseCode.REVOKED  # the database poll
    assert await ping(b, "still-here")

    redis.start()
    c, c_welcome = await open_socket(server, carol["access"])
    # A restarted Redis forgot every group: the server re-adds its sockets'.
    b_group = user_group(b_welcome["user"]["id"])
    wait_until(
        lambda: redis.command("ZCARD", f"asgi:group:{b_group}") == ":1",
        10,
        "the old socket's group membership to be restored",
    )
    # Not revoked in the database: only the channel layer can close it now.
    await layer_send(
        redis.url, b_group, {"type": "sessions.revoked", "sids": ["another-session"]}
    )
    await layer_send(
        redis.url, b_group, {"type": "sessions.revoked", "sids": [b_welcome["session"]]}
    )
    assert await close_code(b, timeout=5) == CloseCode.REVOKED
    await layer_send(
        redis.url,
        user_group(c_welcome["user"]["id"]),
        {"type": "sessions.revoked", "sids": [c_welcome["session"]]},
    )
    assert await close_code(c, timeout=5) == CloseCode.REVOKED

    logs = server.logs()
    assert "Traceback" not in logs
    assert server.process.poll() is None


async def test_a_consumer_exception_closes_only_its_own_socket_with_1011(
    e2e_env, tmp_path
):
    env = {**e2e_env, "AUTHSOCKET_MAX_CONNECTIONS_PER_USER": "2"}
    server = serving(DaphneServer, "tests.reliability.crashing_asgi:application")(
        env, log_path=tmp_path / "daphne.log"
    ).start()
    try:
        alice = login(server.http, "alice", PASSWORD)
        bob = login(server.http, "bob", PASSWORD)
        victim, _ = await open_socket(server, alice["access"])
        same_user, _ = await open_socket(server, alice["access"])
        other_user, _ = await open_socket(server, bob["access"])
        await victim.send(json.dumps({"type": CRASH_FRAME}))
        assert await close_code(victim, timeout=5) == CloseCode.INTERNAL_ERROR
        assert await stays_open([same_user, other_user], seconds=1)
        # The dead socket released its place: alice may hold 2 again.
        fresh, _ = await open_socket(server, alice["access"])
        assert await ping(fresh, "after")
        logs = server.logs()
        assert logs.count("Exception inside application") == 1  # with its traceback
        for socket in (same_user, other_user, fresh):
            await socket.close()
    finally:
        server.stop()


@pytest.fixture
def postgres_daphne(tmp_path):
    """daphne on a private PostgreSQL database reached through a cut-out."""
    with daphne_on_cut_postgres(tmp_path / "daphne.log") as server_and_cutout:
        yield server_and_cutout


@pytest.mark.services
async def test_database_outage_refuses_handshakes_cleanly_then_recovers(
    postgres_daphne,
):
    server, cutout = postgres_daphne
    alice = login(server.http, "alice", PASSWORD)
    bob = login(server.http, "bob", PASSWORD)
    a, _ = await open_socket(server, alice["access"])
    c, _ = await open_socket(server, alice["access"])

    cutout.cut()
    refused = 0
    # Sessions the guard knows (alice's socket, bob's login, which its poll
    # learns) are trusted only while the poll succeeds: within a second every
    # handshake goes to the database, and is refused cleanly.
    for tokens in (alice, bob):
        deadline = time.monotonic() + 2
        while (answer := await refusal(server, tokens["access"])) is None:
            assert time.monotonic() < deadline, "a cached session outlived the outage"
            await asyncio.sleep(0.05)  # state in another process: poll it
        refused += 1
        assert answer[0] == 403 and b"Traceback" not in answer[1]
    assert await ping(a, "during")  # an authenticated socket needs no database
    status, body, _ = call("GET", f"{server.http}/api/me", token=bob["access"])
    assert status >= 500 and body == {
        "detail": "Internal server error.",
        "code": "server_error",
    }
    # A frame that needs the database fails like any handler's error: that
    # socket alone closes 1011 (its client reconnects with backoff); the
    # others stay.
    await c.send(json.dumps({"type": "subscribe", "stream": "room:lobby"}))
    assert await close_code(c, 15) == 1011
    assert await ping(a, "still")

    cutout.restore()
    deadline = time.monotonic() + 10
    while (answer := await refusal(server, bob["access"])) is not None:
        refused += 1
        assert time.monotonic() < deadline, "no recovery after the database returned"
        await asyncio.sleep(0.05)
    assert await ping(a, "after")
    assert call("GET", f"{server.http}/api/me", token=bob["access"])[0] == 200
    wait_until(
        lambda: "revocation poll recovered" in server.logs(), 5, "the poll to recover"
    )
    logs = server.logs()
    # One WARNING line per refused handshake, naming the error, no traceback.
    assert logs.count("websocket refused: database unavailable (") == refused
    assert logs.count("revocation poll failed") == 1  # once per outage, not per poll
    assert "Traceback" not in logs.split("GET /api/me")[0]  # before the 500
    await a.close()
