"""Two daphne processes sharing PostgreSQL and Redis behave as one service."""

import asyncio
import time
import uuid

import pytest
import websockets

from tests.servers import manage

from .client import (
    close_code,
    connect,
    http,
    login,
    recv_until,
    send_json,
    subscribe,
    ticket,
)
from .conftest import DEMO_PASSWORD

pytestmark = [pytest.mark.services, pytest.mark.e2e, pytest.mark.timeout(120)]


@pytest.mark.asyncio
async def test_message_published_on_a_reaches_a_subscriber_on_b(cluster):
    a, b = cluster
    alice = await login(a.http, "alice", DEMO_PASSWORD)
    bob = await login(b.http, "bob", DEMO_PASSWORD)
    listener, _ = await connect(b.ws, token=bob["access"])
    publisher, _ = await connect(a.ws, token=alice["access"])
    try:
        assert (await subscribe(listener, "room:lobby"))["type"] == "subscribed"
        marker = uuid.uuid4().hex
        await send_json(
            publisher,
            {"type": "publish", "stream": "room:lobby", "data": {"m": marker}},
        )
        published = await recv_until(publisher, lambda f: f["type"] == "published")
        message = await recv_until(
            listener,
            lambda f: f["type"] == "message" and f.get("data") == {"m": marker},
            timeout=5,
        )
        assert message["id"] == published["id"]
        assert message["sender"]["username"] == "alice"
    finally:
        await listener.close()
        await publisher.close()


@pytest.mark.asyncio
async def test_logout_served_by_a_closes_the_socket_on_b_with_4403_within_1s(cluster):
    a, b = cluster
    session = await login(a.http, "carol", DEMO_PASSWORD)
    other = await login(a.http, "carol", DEMO_PASSWORD)
    doomed, _ = await connect(b.ws, token=session["access"])
    survivor, _ = await connect(b.ws, token=other["access"])
    try:
        status, _ = await http(
            "POST", f"{a.http}/api/auth/logout", token=session["access"]
        )
        logged_out = time.monotonic()
        assert status == 204
        code = await close_code(doomed, timeout=3)
        elapsed = time.monotonic() - logged_out
        assert code == 4403
        assert elapsed < 1.0, f"closed {elapsed:.2f}s after the logout answered"
        # Only that session: carol's other socket on B stays open.
        await send_json(survivor, {"type": "ping"})
        assert (await recv_until(survivor, lambda f: f["type"] == "pong"))["type"]
    finally:
        await doomed.close()
        await survivor.close()


@pytest.mark.asyncio
async def test_ticket_minted_on_a_is_accepted_by_b_once_and_only_once(cluster):
    a, b = cluster
    alice = await login(a.http, "alice", DEMO_PASSWORD)

    one = await ticket(a.http, alice["access"])
    ws, welcome = await connect(b.ws, ticket=one)
    assert welcome["user"]["username"] == "alice"
    await ws.close()
    for server in (b, a):
        with pytest.raises(websockets.InvalidStatus) as refused:
            await connect(server.ws, ticket=one)
        assert refused.value.response.status_code == 403

    # Concurrent uses of one fresh ticket, spread over both processes.
    racy = await ticket(a.http, alice["access"])

    async def attempt(server):
        try:
            ws, _ = await connect(server.ws, ticket=racy)
        except websockets.InvalidStatus as refused:
            assert refused.response.status_code == 403
            return False
        await ws.close()
        return True

    results = await asyncio.gather(*(attempt((a, b)[i % 2]) for i in range(12)))
    assert sum(results) == 1


@pytest.mark.asyncio
async def test_notify_command_in_a_third_process_reaches_a_socket_on_b(
    cluster, deploy_env
):
    _, b = cluster
    alice = await login(b.http, "alice", DEMO_PASSWORD)
    ws, _ = await connect(b.ws, token=alice["access"])
    try:
        text = f"hello {uuid.uuid4().hex}"
        await asyncio.to_thread(manage, deploy_env, "notify", "alice", text, timeout=60)
        message = await recv_until(
            ws,
            lambda f: f["type"] == "message" and f.get("data") == {"text": text},
            timeout=5,
        )
        assert message["stream"] == "user"
        assert message["sender"] is None
    finally:
        await ws.close()
