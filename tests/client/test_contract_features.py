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
from tests.client.conftest import PASSWORD, LocalTcpServer
from tests.servers import manage

pytestmark = [pytest.mark.e2e]


def service_key(server) -> str:
    output = manage(server.env, "service_key", "create", "client-tests")
    match = re.search(r"\bask_\S+", output)
    assert match, output
    return match.group(0)


async def next_presence(socket, timeout: float = 5) -> PresenceEvent:
    async with asyncio.timeout(timeout):
        async for event in socket.presence_events("room:lobby"):
            assert isinstance(event, PresenceEvent)
            assert event.stream == "room:lobby"
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


class AnswerLosingProxy(LocalTcpServer):
    """A TCP proxy to the server that loses the answer on its first connection:
    the request reaches the server, the server answers, the caller gets a
    dropped connection. Later connections pass through."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.connections = 0
        self.lost = asyncio.Event()

    async def _serve(self, client_reader, client_writer):
        self.connections += 1
        first = self.connections == 1
        reader, writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        forward = asyncio.create_task(pipe(client_reader, writer))
        try:
            if first:
                await reader.read(65536)  # the server has answered: lose it
                self.lost.set()
            else:
                await pipe(reader, client_writer)
        finally:
            forward.cancel()
            writer.close()
            client_writer.close()


async def pipe(reader, writer) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()


async def test_server_api_publish_retried_after_a_lost_answer_is_stored_once(server):
    """The answer to a publish is lost on the way back: the client retries with
    the same Idempotency-Key and gets the message stored the first time."""
    key = await asyncio.to_thread(service_key, server)
    async with (
        AnswerLosingProxy(server.port) as proxy,
        ServerClient(proxy.url, key, backoff_base=0.05) as backend,
    ):
        message = await backend.publish("room:lobby", {"text": "exactly once"})
        assert proxy.lost.is_set() and proxy.connections == 2
    async with ServerClient(server.http, key) as direct:
        history = await direct.history("room:lobby", after=0)
    stored = [m for m in history if m["data"] == {"text": "exactly once"}]
    assert [m["id"] for m in stored] == [message["id"]]


async def test_server_api_revoke_retried_after_a_lost_answer_revokes_and_counts_0(
    server,
):
    """The revoke is done but its answer lost: the client retries, and the
    retry finds the session revoked already. The sessions are revoked all
    the same (a retry is safe); the count is the answering attempt's, 0
    here, as the client's README says (the revoke takes no Idempotency-Key)."""
    key = await asyncio.to_thread(service_key, server)
    async with ApiClient(server.http) as alice:
        await alice.login("alice", PASSWORD)
        user_id = (await alice.me())["id"]
        async with (
            AnswerLosingProxy(server.port) as proxy,
            ServerClient(proxy.url, key, backoff_base=0.05) as backend,
        ):
            assert await backend.revoke_user(user_id) == 0
            assert proxy.lost.is_set() and proxy.connections == 2
        with pytest.raises(CredentialsRejected) as dead:
            await alice.me()
        assert dead.value.code == "revoked"


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
