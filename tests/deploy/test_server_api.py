"""The server API on two daphne processes sharing PostgreSQL and Redis."""

import asyncio
import re
import time
import uuid

import pytest
import websockets

from realtime.protocol import SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX
from tests.http import call
from tests.servers import manage

from .client import close_code, connect, http, login, recv_until, subscribe
from .conftest import DEMO_PASSWORD

pytestmark = [pytest.mark.services, pytest.mark.e2e, pytest.mark.timeout(120)]


async def new_key(env) -> tuple[str, str]:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    output = await asyncio.to_thread(manage, env, "service_key", "create", name)
    return name, re.search(r"\bask_\S+", output).group(0)


def with_key(key: str, **headers) -> dict:
    return {"Authorization": f"ApiKey {key}", **headers}


@pytest.mark.asyncio
async def test_a_server_publish_reaches_sockets_on_both_processes(cluster, deploy_env):
    a, b = cluster
    _, key = await new_key(deploy_env)
    alice = await login(a.http, "alice", DEMO_PASSWORD)
    bob = await login(b.http, "bob", DEMO_PASSWORD)
    on_a, welcome = await connect(a.ws, token=alice["access"])
    on_b, _ = await connect(b.ws, token=bob["access"])
    try:
        for socket in (on_a, on_b):
            assert (await subscribe(socket, "room:lobby"))["type"] == "subscribed"
        marker = uuid.uuid4().hex
        status, message = await http(
            "POST",
            f"{a.http}/api/server/publish",
            {"stream": "room:lobby", "data": {"m": marker}},
            headers=with_key(key, **{"Idempotency-Key": marker}),
        )
        assert status == 201, message
        for socket in (on_a, on_b):
            live = await recv_until(
                socket, lambda f: f.get("data") == {"m": marker}, timeout=5
            )
            assert (live["id"], live["sender"]) == (message["id"], None)
        # The retry goes to the other process: the first message, nothing new.
        status, again = await http(
            "POST",
            f"{b.http}/api/server/publish",
            {"stream": "room:lobby", "data": {"m": marker}},
            headers=with_key(key, **{"Idempotency-Key": marker}),
        )
        assert (status, again) == (200, message)
        user_id = welcome["user"]["id"]
        status, own = await http(
            "POST",
            f"{b.http}/api/server/publish",
            {"stream": f"user:{user_id}", "data": {"m": marker}},
            headers=with_key(key),
        )
        assert (status, own["stream"]) == (201, f"user:{user_id}")
        live = await recv_until(on_a, lambda f: f["stream"] == "user", timeout=5)
        assert live["id"] == own["id"]
    finally:
        await on_a.close()
        await on_b.close()


@pytest.mark.asyncio
async def test_a_revoked_key_is_refused_on_both_processes_within_a_second(
    cluster, deploy_env
):
    a, b = cluster
    name, key = await new_key(deploy_env)
    url = "/api/server/streams/room:lobby/messages?limit=1"
    for server in (a, b):
        status, _ = await http("GET", f"{server.http}{url}", headers=with_key(key))
        assert status == 200
    await asyncio.to_thread(manage, deploy_env, "service_key", "revoke", name)
    revoked = time.monotonic()
    for server in (a, b):
        status, body = await http("GET", f"{server.http}{url}", headers=with_key(key))
        assert (status, body["code"]) == (401, "invalid_key")
    assert time.monotonic() - revoked < 1.0


@pytest.mark.asyncio
async def test_a_user_revoked_through_the_api_sees_4403_on_both_processes(
    cluster, deploy_env
):
    a, b = cluster
    _, key = await new_key(deploy_env)
    carol = await login(a.http, "carol", DEMO_PASSWORD)
    other = await login(b.http, "carol", DEMO_PASSWORD)
    on_a, welcome = await connect(a.ws, token=carol["access"])
    on_b, _ = await connect(b.ws, token=other["access"])
    try:
        user_id = welcome["user"]["id"]
        status, body = await http(
            "POST",
            f"{a.http}/api/server/users/{user_id}/revoke",
            headers=with_key(key),
        )
        answered = time.monotonic()
        assert status == 200 and body["revoked"] >= 2
        codes = await asyncio.gather(
            close_code(on_a, timeout=3), close_code(on_b, timeout=3)
        )
        assert codes == [4403, 4403]
        assert time.monotonic() - answered < 1.0
    finally:
        await on_a.close()
        await on_b.close()


async def call_with_headers(method, url, *, token=None, headers=None):
    """(status, body, WWW-Authenticate) of one request to a running server."""
    status, body, answered = await asyncio.to_thread(
        call, method, url, {"stream": "room:lobby", "data": 1}, token, headers
    )
    return status, body, answered.get("WWW-Authenticate")


def key_handshakes(key: str) -> list[tuple[str, dict]]:
    """A service key in every place a handshake takes a credential."""
    return [
        ("", {"additional_headers": with_key(key)}),
        ("", {"additional_headers": {"Authorization": f"Bearer {key}"}}),
        ("", {"subprotocols": [SUBPROTOCOL, f"{TOKEN_SUBPROTOCOL_PREFIX}{key}"]}),
        (f"?token={key}", {}),
        (f"?ticket={key}", {}),
    ]


async def refused_handshake(base_ws: str, query: str, options: dict) -> int:
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(f"{base_ws}/ws/{query}", open_timeout=10, **options)
    return refused.value.response.status_code


@pytest.mark.asyncio
async def test_the_two_worlds_do_not_cross_on_a_running_server(cluster, deploy_env):
    a, b = cluster
    _, key = await new_key(deploy_env)
    alice = await login(a.http, "alice", DEMO_PASSWORD)
    for server in (a, b):
        answer = await call_with_headers(
            "POST", f"{server.http}/api/server/publish", token=alice["access"]
        )
        assert (answer[0], answer[1]["code"]) == (401, "not_authenticated"), answer
        assert answer[2] == "ApiKey", answer
        for headers, code in (
            (with_key(key), "not_authenticated"),
            ({"Authorization": f"Bearer {key}"}, "invalid_token"),
        ):
            answer = await call_with_headers(
                "GET", f"{server.http}/api/me", headers=headers
            )
            assert (answer[0], answer[1]["code"]) == (401, code), answer
            assert answer[2] == "Bearer", answer
        for query, options in key_handshakes(key):
            assert await refused_handshake(server.ws, query, options) == 403, query


@pytest.mark.asyncio
async def test_no_process_logs_a_service_key(cluster, deploy_env):
    a, b = cluster
    _, key = await new_key(deploy_env)
    alice = await login(a.http, "alice", DEMO_PASSWORD)
    for server in (a, b):
        await http(
            "GET",
            f"{server.http}/api/server/streams/room:lobby/messages",
            headers=with_key(key),
        )
        await http("GET", f"{server.http}/api/me", headers=with_key(key))
        await http(
            "GET", f"{server.http}/api/me", headers={"Authorization": f"Bearer {key}"}
        )
        # A key in a path or a query string reaches the access log's line.
        await http("GET", f"{server.http}/api/server/streams/{key}/messages")
        await http("GET", f"{server.http}/api/me?key={key}")
        for query, options in key_handshakes(key):
            await refused_handshake(server.ws, query, options)
        # Beside a valid token the key is ignored: the socket opens, quietly.
        socket, _ = await connect(
            server.ws, token=alice["access"], headers=with_key(key)
        )
        await socket.close()
    for server in (a, b):
        logs = server.output
        assert logs and key not in logs and key[len("ask_") :] not in logs
