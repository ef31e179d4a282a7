"""Presence on several daphne processes sharing PostgreSQL and Redis (raw frames).

The processes use a Redis database of their own (REDIS_DB) and a short
AUTHSOCKET_PRESENCE_TTL, so a killed process is noticed within seconds and
"Redis forgot everything" can be done by deleting the registry's keys; the
last test restarts a Redis of its own.
"""

import asyncio
import contextlib
import re
import signal
import time
import uuid

import pytest
import redis

from tests import services
from tests.servers import manage

from .client import (
    close_code,
    connect,
    http,
    login,
    recv_until,
    send_json,
    subscribe,
    watch,
)
from .conftest import DEMO_PASSWORD, start_servers
from .processes import ServerProcess

pytestmark = [pytest.mark.services, pytest.mark.e2e, pytest.mark.timeout(120)]

REDIS_DB = 7  # used by this module only: flushed before it starts
PRESENCE_TTL = 3
REGISTRY_KEYS = "authsocket:*"  # the registry's keys; the channel layer's stay


@pytest.fixture(scope="module")
def presence_env(deploy_env):
    url = services.require_redis().rsplit("/", 1)[0] + f"/{REDIS_DB}"
    with redis.Redis.from_url(url) as client:
        client.flushdb()
    return {
        **deploy_env,
        "REDIS_URL": url,
        "AUTHSOCKET_PRESENCE_TTL": str(PRESENCE_TTL),
    }


@pytest.fixture(scope="module")
def pair(presence_env, log_dir):
    """Two processes, A and B."""
    servers = start_servers(presence_env, log_dir, "presence-a", "presence-b")
    try:
        yield tuple(servers)
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
async def third(presence_env, log_dir):
    """A process C that a test may drain or kill."""
    name = f"presence-c-{uuid.uuid4().hex[:6]}"
    server = ServerProcess(name, presence_env, log_dir)
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


@pytest.fixture(scope="module")
def service_key(presence_env) -> str:
    output = manage(presence_env, "service_key", "create", f"presence-{uuid.uuid4()}")
    return re.search(r"\bask_\S+", output).group(0)


async def open_socket(server, username: str):
    tokens = await login(server.http, username, DEMO_PASSWORD)
    socket, welcome = await connect(server.ws, token=tokens["access"])
    return socket, welcome, tokens["access"]


def change(kind: str, username: str):
    return lambda f: (
        f["type"] == f"presence.{kind}" and (f["user"]["username"] == username)
    )


def names(snapshot: dict) -> set[str]:
    return {u["username"] for u in snapshot["users"]}


async def connections(server, key: str, user_id: int) -> dict:
    status, body = await http(
        "GET",
        f"{server.http}/api/server/users/{user_id}/connections",
        headers={"Authorization": f"ApiKey {key}"},
    )
    assert status == 200, body
    return body


async def test_a_join_and_a_leave_cross_processes_within_a_second(pair, service_key):
    a, b = pair
    watcher, _, _ = await open_socket(a, "alice")
    other, welcome, bob_token = await open_socket(b, "bob")
    try:
        assert "alice" in names(await watch(watcher, "room:lobby"))
        assert (await subscribe(other, "room:lobby"))["type"] == "subscribed"
        subscribed = time.monotonic()
        joined = await recv_until(watcher, change("join", "bob"), timeout=5)
        assert time.monotonic() - subscribed < 1.0
        assert joined == {
            "type": "presence.join",
            "stream": "room:lobby",
            "user": {"id": welcome["user"]["id"], "username": "bob"},
        }
        for server in (a, b):
            for path in (
                "/api/rooms/lobby/presence",
                "/api/streams/room:lobby/presence",
            ):
                status, body = await http(
                    "GET", f"{server.http}{path}", token=bob_token
                )
                assert status == 200 and {"alice", "bob"} <= names(body), body
            status, body = await http(
                "GET",
                f"{server.http}/api/server/streams/room:lobby/presence",
                headers={"Authorization": f"ApiKey {service_key}"},
            )
            assert status == 200 and {"alice", "bob"} <= names(body), body
        await other.close()
        closed = time.monotonic()
        await recv_until(watcher, change("leave", "bob"), timeout=5)
        assert time.monotonic() - closed < 1.0
    finally:
        await watcher.close()
        await other.close()


async def connections_become(servers, key: str, user_id: int, count: int) -> None:
    """Every server answers `count` sockets within a second.

    The server counts a socket just after its `welcome`, and forgets it just
    after the closing handshake a client's close waits for: so the count is
    read until it settles.
    """
    deadline = time.monotonic() + 1.0
    for server in servers:
        while True:
            body = await connections(server, key, user_id)
            per_session = sum(s["connections"] for s in body["sessions"])
            if body["connections"] == count and per_session == count:
                break
            assert time.monotonic() < deadline, (server.name, count, body)
            await asyncio.sleep(0.05)


async def test_connections_are_counted_on_both_processes(pair, service_key):
    a, b = pair
    sockets = []
    try:
        for server in (a, b, b, a):
            socket, welcome, _ = await open_socket(server, "carol")
            sockets.append(socket)
        user_id = welcome["user"]["id"]
        await connections_become((a, b), service_key, user_id, 4)
        for server in (a, b):  # four logins, one socket each
            body = await connections(server, service_key, user_id)
            assert [s["connections"] for s in body["sessions"]] == [1] * 4, body
        # Close on A, then on B: both processes follow each close.
        for remaining in (3, 2):
            await sockets.pop().close()
            await connections_become((a, b), service_key, user_id, remaining)
    finally:
        for socket in sockets:
            await socket.close()
    await connections_become((a, b), service_key, user_id, 0)
    for server in (a, b):
        body = await connections(server, service_key, user_id)
        assert body == {"connections": 0, "sessions": []}


@contextlib.asynccontextmanager
async def carol_watched(watching, doomed_process):
    """alice watches `room:lobby` on one process; carol is on it from another."""
    watcher, _, _ = await open_socket(watching, "alice")
    doomed, _, _ = await open_socket(doomed_process, "carol")
    try:
        await watch(watcher, "room:lobby")
        await subscribe(doomed, "room:lobby")
        await recv_until(watcher, change("join", "carol"), timeout=5)
        yield watcher, doomed
    finally:
        await watcher.close()
        await doomed.close()


async def test_a_drained_process_users_leave_within_a_second(pair, third):
    async with carol_watched(pair[0], third) as (watcher, doomed):
        third.signal(signal.SIGTERM)
        assert await close_code(doomed, timeout=10) == 4503
        closed = time.monotonic()
        await recv_until(watcher, change("leave", "carol"), timeout=5)
        assert time.monotonic() - closed < 1.0


async def test_a_killed_process_users_leave_within_the_ttl_plus_a_second(pair, third):
    async with carol_watched(pair[0], third) as (watcher, _):
        third.signal(signal.SIGKILL)
        killed = time.monotonic()
        await recv_until(watcher, change("leave", "carol"), timeout=PRESENCE_TTL + 5)
        assert time.monotonic() - killed < PRESENCE_TTL + 1


async def test_when_redis_forgets_watchers_get_a_fresh_snapshot(pair, presence_env):
    a, b = pair
    watcher, _, _ = await open_socket(a, "alice")
    other, _, bob_token = await open_socket(b, "bob")
    try:
        await watch(watcher, "room:team")
        await subscribe(other, "room:team")
        await recv_until(watcher, change("join", "bob"), timeout=5)
        with redis.Redis.from_url(presence_env["REDIS_URL"]) as client:
            keys = list(client.scan_iter(REGISTRY_KEYS))
            assert keys
            client.delete(*keys)
        # Each process writes its own sockets back, then sends a fresh snapshot:
        # the one after both did lists both.
        fresh = await recv_until(
            watcher,
            lambda f: f["type"] == "presence" and names(f) == {"alice", "bob"},
            timeout=5,
        )
        assert fresh["stream"] == "room:team" and fresh["count"] == 2
        status, body = await http(
            "GET", f"{b.http}/api/rooms/team/presence", token=bob_token
        )
        assert status == 200 and names(body) == {"alice", "bob"}, body
    finally:
        await watcher.close()
        await other.close()


async def test_after_a_redis_restart_watchers_get_a_fresh_snapshot(
    own_redis, presence_env, log_dir
):
    env = {**presence_env, "REDIS_URL": own_redis.url}
    a, b = await asyncio.to_thread(
        start_servers, env, log_dir, "presence-restart-a", "presence-restart-b"
    )
    watcher, _, _ = await open_socket(a, "alice")
    other, _, _ = await open_socket(b, "bob")
    try:
        await watch(watcher, "room:team")
        await subscribe(other, "room:team")
        await recv_until(watcher, change("join", "bob"), timeout=5)
        await asyncio.to_thread(own_redis.stop)
        await asyncio.to_thread(own_redis.start)  # empty: it saved nothing
        fresh = await recv_until(
            watcher,
            lambda f: f["type"] == "presence" and names(f) == {"alice", "bob"},
            timeout=15,
        )
        assert fresh["count"] == 2
        await send_json(watcher, {"type": "ping"})  # the outage closed nothing
        assert (await recv_until(watcher, lambda f: f["type"] == "pong"))["type"]
        await other.close()
        await recv_until(watcher, change("leave", "bob"), timeout=5)
    finally:
        await watcher.close()
        await other.close()
        for server in (a, b):
            await asyncio.to_thread(server.stop)
