"""Presence and the server API through the client, against the real server."""

import asyncio
import contextlib
import re

import pytest

from authsocket_client import (
    ApiClient,
    ApiError,
    CredentialsRejected,
    PresenceEvent,
    ServerClient,
)
from tests.client.conftest import PASSWORD
from tests.servers import manage

pytestmark = [pytest.mark.e2e]


def service_key(server) -> str:
    output = manage(server.env, "service_key", "create", "client-tests")
    match = re.search(r"\bask_\S+", output)
    assert match, output
    return match.group(0)


async def next_presence(socket, timeout: float = 5) -> PresenceEvent:
    async with asyncio.timeout(timeout):
        async for event in socket:
            if isinstance(event, PresenceEvent):
                return event
    raise AssertionError("the socket stopped")


async def test_presence_view_follows_snapshot_join_and_leave(server):
    async with ApiClient(server.http) as alice, ApiClient(server.http) as bob:
        await alice.login("alice", PASSWORD)
        await bob.login("bob", PASSWORD)
        async with alice.socket() as watcher:
            await watcher.subscribe("room:lobby", presence=True)
            snapshot = await next_presence(watcher)
            assert snapshot.kind == "snapshot"
            assert [u["username"] for u in snapshot.users] == ["alice"]
            async with bob.socket() as other:
                await other.subscribe("room:lobby")
                joined = await next_presence(watcher)
                assert (joined.kind, joined.user["username"]) == ("join", "bob")
                view = watcher.presence("room:lobby")
                assert joined.count == 2 == view.count
                assert sorted(u["username"] for u in view.users) == ["alice", "bob"]
            left = await next_presence(watcher)
            assert (left.kind, left.user["username"], left.count) == ("leave", "bob", 1)
            http = await alice.stream_presence("room:lobby")
            assert [u["username"] for u in http["users"]] == ["alice"]


@contextlib.asynccontextmanager
async def backend_and_lobby_socket(server):
    """A service-key client, and alice's socket subscribed to `room:lobby`."""
    key = await asyncio.to_thread(service_key, server)
    async with (
        ServerClient(server.http, key) as backend,
        ApiClient(server.http) as alice,
    ):
        await alice.login("alice", PASSWORD)
        async with alice.socket() as socket:
            await socket.subscribe("room:lobby")
            yield backend, socket


async def test_server_api_publish_is_idempotent_and_reaches_sockets(server):
    async with backend_and_lobby_socket(server) as (backend, socket):
        first = await backend.publish("room:lobby", {"n": 1}, idempotency_key="k1")
        again = await backend.publish("room:lobby", {"n": 1}, idempotency_key="k1")
        assert again == first and first["sender"] is None
        async with asyncio.timeout(5):
            async for message in socket.messages():
                assert message.id == first["id"]
                break
        history = await backend.history("room:lobby", after=first["id"] - 1)
        assert [m["id"] for m in history] == [first["id"]]
        user_id = socket.welcome["user"]["id"]
        assert await backend.revoke_user(user_id) >= 1
        with pytest.raises(CredentialsRejected):
            async with asyncio.timeout(5):
                async for _ in socket:
                    pass


async def test_server_api_presence_and_connections_count_live_sockets(server):
    async with backend_and_lobby_socket(server) as (backend, socket):
        presence = await backend.presence("room:lobby")
        assert [u["username"] for u in presence["users"]] == ["alice"]
        user_id = socket.welcome["user"]["id"]
        assert (await backend.connections(user_id))["connections"] == 1


async def test_server_api_refuses_a_bad_key_with_its_code(server):
    async with ServerClient(server.http, "ask_not-a-key") as backend:
        with pytest.raises(ApiError) as refused:
            await backend.publish("room:lobby", {"n": 1})
        assert refused.value.code == "invalid_key"
