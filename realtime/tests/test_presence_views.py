"""Presence and connection counts over HTTP (docs/protocol.md §2, §7).

Sockets connect through the real application; the views reach the registry
on the test's event loop, as sync views under daphne reach the server's.
"""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from rest_framework.test import APIClient

from accounts.models import User
from accounts.service_keys import service_key_create
from realtime.presence import registry_get
from realtime.presence.registry import SocketRegistry
from realtime.tests.conftest import db, send, subscribe

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest.fixture
def key():
    return service_key_create(name="backend")[1]


@sync_to_async
def get(client: APIClient, path: str):
    return client.get(path)


def service(raw_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"ApiKey {raw_key}")
    return client


async def test_room_and_stream_presence_list_who_is_subscribed(
    connect, api, alice, bob, rooms
):
    a1, a2, b = await connect(alice), await connect(alice), await connect(bob)
    for socket in (a1, a2, b):
        await subscribe(socket, "room:lobby")
    client = await db(api, alice)
    expected = {
        "stream": "room:lobby",
        "users": [
            {"id": alice.pk, "username": "alice", "connections": 2},
            {"id": bob.pk, "username": "bob", "connections": 1},
        ],
        "count": 2,
    }
    for path in ("/api/rooms/lobby/presence", "/api/streams/room:lobby/presence"):
        response = await get(client, path)
        assert (response.status_code, response.json()) == (200, expected)
    await b.disconnect()
    response = await get(client, "/api/rooms/lobby/presence")
    assert response.json()["count"] == 1


async def test_hidden_streams_and_kinds_without_presence_are_404(
    api, alice, rooms, test_kinds
):
    client = await db(api, alice)
    for path in (
        "/api/rooms/secret/presence",
        "/api/rooms/nowhere/presence",
        "/api/rooms/Bad!/presence",
        "/api/streams/room:secret/presence",
        "/api/streams/user/presence",
        f"/api/streams/user:{alice.pk}/presence",
        "/api/streams/tick:x/presence",
        "/api/streams/nope:1/presence",
    ):
        response = await get(client, path)
        assert response.status_code == 404, path
        assert response.json()["code"] == "not_found"
    assert (await get(APIClient(), "/api/rooms/lobby/presence")).status_code == 401


async def test_the_server_api_answers_presence_and_connections(
    connect, key, alice, bob, rooms, test_kinds
):
    a1, a2 = await connect(alice), await connect(alice)
    await subscribe(a1, "room:team")
    backend = service(key)
    response = await get(backend, "/api/server/streams/room:team/presence")
    assert response.status_code == 200
    assert response.json() == {
        "stream": "room:team",
        "users": [{"id": alice.pk, "username": "alice", "connections": 1}],
        "count": 1,
    }
    response = await get(backend, f"/api/server/users/{alice.pk}/connections")
    body = response.json()
    assert response.status_code == 200 and body["connections"] == 2
    assert sorted(s["connections"] for s in body["sessions"]) == [1, 1]
    await a2.disconnect()
    response = await get(backend, f"/api/server/users/{alice.pk}/connections")
    assert response.json()["connections"] == 1
    response = await get(backend, f"/api/server/users/{bob.pk}/connections")
    assert response.json() == {"connections": 0, "sessions": []}
    for path in (
        "/api/server/streams/room:nowhere/presence",
        "/api/server/streams/tick:x/presence",
        f"/api/server/streams/user:{alice.pk}/presence",
        "/api/server/users/999999/connections",
    ):
        assert (await get(backend, path)).status_code == 404, path
    refused = await get(APIClient(), f"/api/server/users/{alice.pk}/connections")
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"] == "ApiKey"


async def test_a_cut_snapshot_still_lists_the_caller(
    connect, api, alice, bob, rooms, monkeypatch
):
    """Over HTTP and by the `presence` frame, as in a subscriber's snapshot:
    cut at the limit (1 here), the caller on the stream is listed."""
    monkeypatch.setattr("realtime.presence.registry.PRESENCE_SNAPSHOT_LIMIT", 1)
    a, b = await connect(alice), await connect(bob)
    for socket in (a, b):
        await subscribe(socket, "room:lobby")
    assert alice.pk < bob.pk  # cut by id alone, bob would not be listed
    response = await get(await db(api, bob), "/api/rooms/lobby/presence")
    body = response.json()
    assert [u["id"] for u in body["users"]] == [bob.pk]
    assert (body["count"], body["truncated"]) == (2, True)
    answer = await send(b, {"type": "presence", "stream": "room:lobby"})
    assert [u["id"] for u in answer["users"]] == [bob.pk]
    response = await get(await db(api, alice), "/api/rooms/lobby/presence")
    assert [u["id"] for u in response.json()["users"]] == [alice.pk]


async def test_a_process_that_served_no_socket_forgets_a_killed_ones_presence(
    api, key, alice, bob, rooms
):
    """AUTHSOCKET_PRESENCE_TTL holds on every process: one that has only
    answered HTTP so far still drops a killed process's users after it."""
    ttl = 1
    doomed = SocketRegistry(registry_get().store, ttl=ttl, process_id="doomed")
    await doomed.socket_open("b1", user_id=bob.pk, username="bob", sid="s1")
    await doomed.stream_join("b1", "room:lobby")
    await doomed.stop(goodbye=False)  # SIGKILL: no goodbye, no more heartbeats
    await asyncio.sleep(ttl + 0.2)
    response = await get(await db(api, alice), "/api/rooms/lobby/presence")
    assert response.json() == {"stream": "room:lobby", "users": [], "count": 0}
    response = await get(service(key), f"/api/server/users/{bob.pk}/connections")
    assert response.json() == {"connections": 0, "sessions": []}


async def test_a_room_of_more_than_a_thousand_lists_a_thousand_and_the_caller(
    connect, api, make_user, key, alice, rooms
):
    """The real cap: 1,000 users, the lowest ids, `count` all of them; the
    caller on the stream takes the last place wherever he asks from."""
    crowd = await db(
        lambda: User.objects.bulk_create(
            User(username=f"crowd{n}", password="!") for n in range(1000)
        )
    )
    caller = await db(make_user, "zed")  # the highest id of all
    elsewhere = SocketRegistry(registry_get().store, ttl=30, process_id="elsewhere")
    for user in crowd:
        await elsewhere.socket_open(
            f"c{user.pk}", user_id=user.pk, username=user.username, sid="s"
        )
        await elsewhere.stream_join(f"c{user.pk}", "room:lobby")
    z = await connect(caller)
    try:
        await subscribe(z, "room:lobby")
        first = sorted(user.pk for user in crowd)[:999]
        own = [*first, caller.pk]
        for answer in (
            (await get(await db(api, caller), "/api/rooms/lobby/presence")).json(),
            await send(z, {"type": "presence", "stream": "room:lobby"}),
        ):
            assert [u["id"] for u in answer["users"]] == own
            assert (answer["count"], answer["truncated"]) == (1001, True)
        plain = [*first, sorted(user.pk for user in crowd)[999]]
        for client, path in (
            (await db(api, alice), "/api/rooms/lobby/presence"),
            (service(key), "/api/server/streams/room:lobby/presence"),
        ):
            body = (await get(client, path)).json()
            assert [u["id"] for u in body["users"]] == plain, path
            assert (body["count"], body["truncated"]) == (1001, True)
    finally:
        await elsewhere.stop()
