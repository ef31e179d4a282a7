"""Streams end to end on real daphne processes (docs/protocol.md §2, §4.2, §5)."""

import asyncio
import signal
import time
import uuid

import pytest

from tests.http import call
from tests.servers import DaphneServer, manage, running
from tests.services import require_redis as redis_url
from tests.wsclient import login_socket, receive, request, silent

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


async def test_team_room_between_two_real_sockets(daphne_server):
    alice, alice_tokens = await login_socket(daphne_server, "alice")
    bob, bob_tokens = await login_socket(daphne_server, "bob")
    carol, _ = await login_socket(daphne_server, "carol")
    try:
        for socket in (alice, bob):
            assert await request(
                socket, {"type": "subscribe", "stream": "room:team"}
            ) == {
                "type": "subscribed",
                "stream": "room:team",
                "last_id": 0,
            }
        refused = await request(carol, {"type": "subscribe", "stream": "room:team"})
        assert refused["code"] == "forbidden"

        ack = await request(
            alice, {"type": "publish", "stream": "room:team", "data": "one"}
        )
        assert ack == {"type": "published", "stream": "room:team", "id": 1}
        for socket in (alice, bob):
            message = await receive(socket)
            assert (message["id"], message["data"], message["sender"]["username"]) == (
                1,
                "one",
                "alice",
            )
        assert await silent(carol)

        status, body, _ = call(
            "POST",
            f"{daphne_server.http}/api/rooms/team/messages",
            {"data": "two"},
            token=alice_tokens["access"],
        )
        assert status == 201 and body["id"] == 2
        assert (await receive(bob))["data"] == "two"
        await receive(alice)

        late, _ = await login_socket(daphne_server, "bob")
        await request(late, {"type": "subscribe", "stream": "room:team", "since": 0})
        assert [(await receive(late))["id"] for _ in range(2)] == [1, 2]
        await late.close()

        status, _, _ = call(
            "DELETE",
            f"{daphne_server.http}/api/rooms/team/membership",
            token=bob_tokens["access"],
        )
        assert status == 204
        assert await receive(bob) == {
            "type": "unsubscribed",
            "stream": "room:team",
            "reason": "forbidden",
        }
        await request(
            alice, {"type": "publish", "stream": "room:team", "data": "three"}
        )
        await receive(alice)
        assert await silent(bob)
    finally:
        for socket in (alice, bob, carol):
            await socket.close()


@pytest.mark.services
async def test_redis_layer_delivers_across_processes_and_from_notify(e2e_env, tmp_path):
    """Two daphne processes and `manage.py notify` share one Redis channel layer."""
    env = {**e2e_env, "REDIS_URL": redis_url()}
    with (
        running(DaphneServer(env, log_path=tmp_path / "a.log")) as first,
        running(DaphneServer(env, log_path=tmp_path / "b.log")) as second,
    ):
        alice, _ = await login_socket(first, "alice")
        bob, _ = await login_socket(second, "bob")
        try:
            await request(bob, {"type": "subscribe", "stream": "room:lobby"})
            await request(
                alice, {"type": "publish", "stream": "room:lobby", "data": "across"}
            )
            assert (await receive(bob))["data"] == "across"

            await asyncio.to_thread(manage, env, "notify", "bob", "from the shell")
            message = await receive(bob)
            assert (message["stream"], message["data"]) == (
                "user",
                {"text": "from the shell"},
            )
        finally:
            await alice.close()
            await bob.close()


async def test_a_plain_daphne_stopped_by_sigterm_sends_its_users_leaves_at_once(
    e2e_env, tmp_path
):
    """Plain daphne cancels its sockets on SIGTERM without a `disconnect`: the
    registry says goodbye before the reactor stops, so the other processes'
    watchers hear the leaves within a second, not after the presence TTL
    (docs/protocol.md §4.4)."""
    env = {**e2e_env, "REDIS_URL": redis_url(), "AUTHSOCKET_PRESENCE_TTL": "30"}
    # A room of its own: presence left in the shared Redis by other runs'
    # killed processes must not hide carol's join or leave.
    slug = f"bye-{uuid.uuid4().hex[:12]}"
    create = (
        "from realtime.models import Room; "
        f"Room.objects.create(slug={slug!r}, public=True)"
    )
    await asyncio.to_thread(manage, env, "shell", "-c", create)
    stream = f"room:{slug}"
    doomed = DaphneServer(env, log_path=tmp_path / "b.log")
    with (
        running(DaphneServer(env, log_path=tmp_path / "a.log")) as first,
        running(doomed),
    ):
        watcher, _ = await login_socket(first, "alice")
        carol, _ = await login_socket(doomed, "carol")
        try:
            frame = {"type": "subscribe", "stream": stream, "presence": True}
            await request(watcher, frame)
            await request(carol, {"type": "subscribe", "stream": stream})
            await presence_of(watcher, "presence.join", "carol")
            doomed.signal(signal.SIGTERM)
            stopped = time.monotonic()
            await presence_of(watcher, "presence.leave", "carol")
            assert time.monotonic() - stopped < 1.0
        finally:
            await watcher.close()
            await carol.close()


async def presence_of(socket, kind: str, username: str) -> dict:
    """The next `kind` frame about `username`, skipping the snapshot."""
    while True:
        frame = await receive(socket)
        if frame["type"] == kind and frame["user"]["username"] == username:
            return frame
