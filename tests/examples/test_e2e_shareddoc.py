"""The shared-document example (examples/shareddoc) end to end on real daphne.

Served as `make run-example` serves it: examples.settings and
examples.asgi:application, with `demo_data` and `demo_document` loaded
(document 1, "Plan", owned by alice, shared with bob; carol is a stranger).
"""

import asyncio
import json
import shutil

import pytest
import websockets

from tests.http import call, login
from tests.servers import DaphneServer, manage, server_env, sqlite_url
from tests.wsclient import login_socket, receive, request, silent

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

PASSWORD = "authsocket-demo"
APP = "examples.asgi:application"
DOC = "doc:1"
FORBIDDEN = {
    "type": "error",
    "code": "forbidden",
    "detail": "No such stream, or not allowed.",
}


@pytest.fixture(scope="session")
def doc_template(tmp_path_factory):
    """Migrated with the example's settings, demo users and document: once."""
    directory = tmp_path_factory.mktemp("shareddoc-db")
    env = server_env(sqlite_url(directory), DJANGO_SETTINGS_MODULE="examples.settings")
    manage(env, "migrate", "--noinput")
    manage(env, "demo_data")
    assert "Document 1 " in manage(env, "demo_document")
    return directory / "db.sqlite3"


@pytest.fixture
def doc_server(doc_template, tmp_path):
    shutil.copy(doc_template, tmp_path / "db.sqlite3")
    env = server_env(sqlite_url(tmp_path), DJANGO_SETTINGS_MODULE="examples.settings")
    server = DaphneServer(
        env, log_path=tmp_path / "daphne.log", module="authsocket.serve", app=APP
    ).start()
    yield server
    server.stop()


def history(server, access: str, stream: str = DOC):
    return call("GET", f"{server.http}/api/streams/{stream}/messages", token=access)


def presence(server, access: str, stream: str = DOC):
    return call("GET", f"{server.http}/api/streams/{stream}/presence", token=access)


def collaborator(server, access: str, method: str, username: str, doc: int = 1):
    status, body, _ = call(
        method,
        f"{server.http}/api/documents/{doc}/collaborators/{username}",
        token=access,
    )
    return status


async def test_collaborators_read_and_write_the_document_stream(doc_server):
    alice, alice_tokens = await login_socket(doc_server, "alice")
    bob, bob_tokens = await login_socket(doc_server, "bob")
    try:
        for socket in (alice, bob):
            answer = await request(socket, {"type": "subscribe", "stream": DOC})
            assert answer == {"type": "subscribed", "stream": DOC, "last_id": 0}
        for n, (writer, name) in enumerate(((alice, "alice"), (bob, "bob")), 1):
            ack = await request(writer, {"type": "publish", "stream": DOC, "data": n})
            assert ack == {"type": "published", "stream": DOC, "id": n}
            for socket in (alice, bob):
                message = await receive(socket)
                assert (message["id"], message["data"]) == (n, n)
                assert message["sender"]["username"] == name

        # `since`: a socket that comes back gets what it missed, then live.
        late, _ = await login_socket(doc_server, "bob")
        answer = await request(late, {"type": "subscribe", "stream": DOC, "since": 1})
        assert answer == {"type": "subscribed", "stream": DOC, "last_id": 2}
        replayed = await receive(late)
        assert (replayed["id"], replayed["replay"]) == (2, True)
        await request(alice, {"type": "publish", "stream": DOC, "data": 3})
        assert (await receive(late))["id"] == 3
        await late.close()

        # History over REST, kept by the kind.
        status, page = history(doc_server, bob_tokens["access"])[:2]
        assert status == 200 and [m["data"] for m in page] == [1, 2, 3]
    finally:
        for socket in (alice, bob):
            await socket.close()


async def test_a_stranger_cannot_tell_the_document_exists(doc_server):
    carol, carol_tokens = await login_socket(doc_server, "carol")
    alice_access = login(doc_server.http, "alice", PASSWORD)["access"]
    try:
        for stream in (DOC, "doc:999"):
            frames = (
                {"type": "subscribe", "stream": stream},
                {"type": "publish", "stream": stream, "data": "hi"},
            )
            for frame in frames:
                assert await request(carol, frame) == FORBIDDEN
        assert history(doc_server, carol_tokens["access"])[0] == 404
        assert history(doc_server, alice_access, "doc:999")[0] == 404
        # Only the owner shares: carol's attempt looks like no document at all.
        assert collaborator(doc_server, carol_tokens["access"], "PUT", "carol") == 404
    finally:
        await carol.close()


async def test_a_removed_collaborator_loses_his_live_subscription(doc_server):
    alice, alice_tokens = await login_socket(doc_server, "alice")
    bob, bob_tokens = await login_socket(doc_server, "bob")
    try:
        for socket in (alice, bob):
            await request(socket, {"type": "subscribe", "stream": DOC})
        assert collaborator(doc_server, bob_tokens["access"], "DELETE", "alice") == 404
        assert collaborator(doc_server, alice_tokens["access"], "DELETE", "bob") == 204
        assert await receive(bob) == {
            "type": "unsubscribed",
            "stream": DOC,
            "reason": "forbidden",
        }
        assert await silent(alice)
        await request(alice, {"type": "publish", "stream": DOC, "data": "after"})
        assert (await receive(alice))["data"] == "after"
        assert await silent(bob)
        assert await request(bob, {"type": "subscribe", "stream": DOC}) == FORBIDDEN
        assert history(doc_server, bob_tokens["access"])[0] == 404

        # Shared again: he may subscribe again.
        assert collaborator(doc_server, alice_tokens["access"], "PUT", "bob") == 204
        answer = await request(bob, {"type": "subscribe", "stream": DOC})
        assert answer == {"type": "subscribed", "stream": DOC, "last_id": 1}
    finally:
        for socket in (alice, bob):
            await socket.close()


def cursors_url(server, doc: int = 1) -> str:
    return f"ws://127.0.0.1:{server.port}/ws/docs/{doc}/cursors/"


async def open_cursors(server, access: str, doc: int = 1):
    socket = await websockets.connect(
        cursors_url(server, doc),
        additional_headers={"Authorization": f"Bearer {access}"},
        open_timeout=10,
    )
    assert (await receive(socket))["type"] == "welcome"
    return socket


async def test_cursors_reach_the_other_collaborators_not_the_mover(doc_server):
    alice = login(doc_server.http, "alice", PASSWORD)
    bob = login(doc_server.http, "bob", PASSWORD)
    alice_ws = await open_cursors(doc_server, alice["access"])
    bob_ws = await open_cursors(doc_server, bob["access"])
    try:
        await alice_ws.send(json.dumps({"type": "cursor", "x": 120, "y": 48}))
        assert await receive(bob_ws) == {
            "type": "cursor",
            "user": alice["user"],
            "x": 120,
            "y": 48,
        }
        await bob_ws.send(json.dumps({"type": "cursor", "x": 7.5, "y": -3}))
        # alice's next frame is bob's move: her own was never echoed.
        assert await receive(alice_ws) == {
            "type": "cursor",
            "user": bob["user"],
            "x": 7.5,
            "y": -3,
        }
        assert await silent(bob_ws)
        await alice_ws.send(json.dumps({"type": "cursor", "x": "1", "y": 2, "ref": 9}))
        answer = await receive(alice_ws)
        assert (answer["code"], answer["ref"]) == ("bad_request", 9)
        assert await silent(bob_ws)
    finally:
        for socket in (alice_ws, bob_ws):
            await socket.close()


async def test_strangers_are_refused_on_the_cursor_path_before_accept(doc_server):
    carol = login(doc_server.http, "carol", PASSWORD)
    alice = login(doc_server.http, "alice", PASSWORD)
    for access, doc in ((carol["access"], 1), (alice["access"], 999)):
        with pytest.raises(websockets.InvalidStatus) as refused:
            await open_cursors(doc_server, access, doc)
        assert refused.value.response.status_code == 403
    with pytest.raises(websockets.InvalidStatus) as anonymous:
        await websockets.connect(cursors_url(doc_server), open_timeout=10)
    assert anonymous.value.response.status_code == 403


async def test_collaborators_see_who_is_on_the_document(doc_server):
    alice, _ = await login_socket(doc_server, "alice")
    bob, bob_tokens = await login_socket(doc_server, "bob")
    try:
        frame = {"type": "subscribe", "stream": DOC, "presence": True}
        assert (await request(alice, frame))["type"] == "subscribed"
        snapshot = await asyncio.wait_for(receive(alice), 3)
        assert snapshot["type"] == "presence" and snapshot["count"] == 1
        assert [u["username"] for u in snapshot["users"]] == ["alice"]

        assert (await request(bob, frame))["type"] == "subscribed"
        snapshot = await asyncio.wait_for(receive(bob), 3)
        assert snapshot["type"] == "presence" and snapshot["count"] == 2
        joined = await asyncio.wait_for(receive(alice), 3)
        assert joined == {
            "type": "presence.join",
            "stream": DOC,
            "user": {"id": snapshot_id(snapshot, "bob"), "username": "bob"},
        }

        # Over REST too, by the stream's name; a stranger gets the 404 of no
        # document at all.
        status, body = presence(doc_server, bob_tokens["access"])[:2]
        assert status == 200
        assert (body["stream"], body["count"]) == (DOC, 2)
        assert sorted((u["username"], u["connections"]) for u in body["users"]) == [
            ("alice", 1),
            ("bob", 1),
        ]
        carol = login(doc_server.http, "carol", PASSWORD)["access"]
        assert presence(doc_server, carol)[0] == 404
        assert presence(doc_server, bob_tokens["access"], "doc:999")[0] == 404
    finally:
        for socket in (alice, bob):
            await socket.close()


def snapshot_id(snapshot: dict, username: str) -> int:
    return next(u["id"] for u in snapshot["users"] if u["username"] == username)
