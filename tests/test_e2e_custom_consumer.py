"""A project's consumer on its own path, on a real daphne (docs/extending.md).

Served by `python -m authsocket.serve tests.apps.cursors.asgi:application`:
authsocket's app with the cursor path added as a project adds it, beside /ws/.
Close codes must pass daphne and autobahn for real (plain ints), renewal and
revocation go through the HTTP API, and SIGTERM closes the custom socket 4503.
"""

import asyncio
import json
import signal
import time

import pytest
import websockets

from tests.http import call, login
from tests.servers import DaphneServer
from tests.wsclient import close_code

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

PASSWORD = "authsocket-demo"
APP = "tests.apps.cursors.asgi:application"


@pytest.fixture
def cursor_server(e2e_env, tmp_path):
    env = {**e2e_env, "AUTHSOCKET_ACCESS_TTL": "4", "AUTHSOCKET_LEEWAY": "0"}
    server = DaphneServer(
        env, log_path=tmp_path / "daphne.log", module="authsocket.serve", app=APP
    ).start()
    yield server
    server.stop()


def cursors_url(server, access: str, doc: int = 1) -> str:
    return f"ws://127.0.0.1:{server.port}/ws/cursors/{doc}/?token={access}"


async def recv(socket) -> dict:
    return json.loads(await asyncio.wait_for(socket.recv(), 5))


async def open_cursors(server, access: str):
    socket = await websockets.connect(cursors_url(server, access), open_timeout=10)
    assert (await recv(socket))["type"] == "welcome"
    return socket


async def test_a_custom_path_answers_its_frames_beside_ws(cursor_server):
    alice = login(cursor_server.http, "alice", PASSWORD)
    bob = login(cursor_server.http, "bob", PASSWORD)
    mover = await open_cursors(cursor_server, alice["access"])
    watcher = await open_cursors(cursor_server, bob["access"])
    await mover.send(json.dumps({"type": "cursor", "x": 3, "y": 4}))
    moved = {"type": "cursor", "user": alice["user"]["id"], "x": 3, "y": 4}
    assert await recv(watcher) == moved
    await watcher.send(json.dumps({"type": "cursor", "x": "3", "y": 4, "ref": 1}))
    assert (await recv(watcher))["code"] == "bad_request"
    await watcher.send(json.dumps({"type": "subscribe", "stream": "room:lobby"}))
    assert (await recv(watcher))["code"] == "unknown_type"
    # /ws/ is still served by the same process.
    async with websockets.connect(
        f"{cursor_server.ws}?token={alice['access']}", open_timeout=10
    ) as streams:
        assert (await recv(streams))["type"] == "welcome"
    await mover.close()
    assert await recv(watcher) == {"type": "cursor.left", "user": alice["user"]["id"]}
    await watcher.close()


async def test_refusals_on_a_custom_path_are_http_403(cursor_server):
    alice = login(cursor_server.http, "alice", PASSWORD)
    for url, headers in [
        (cursors_url(cursor_server, "not-a-token"), {}),
        (cursors_url(cursor_server, alice["access"]), {"Origin": "https://evil.test"}),
    ]:
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(url, additional_headers=headers, open_timeout=10)
        assert refused.value.response.status_code == 403


async def test_renewal_then_expiry_4401_on_a_custom_path(cursor_server):
    alice = login(cursor_server.http, "alice", PASSWORD)
    socket = await websockets.connect(
        cursors_url(cursor_server, alice["access"]), open_timeout=10
    )
    first_expiry = (await recv(socket))["expires_at"]
    # Renewed after the first token's warning: the new expiry is then seconds
    # later, so a renewal that moved nothing would close the socket too soon.
    assert await recv(socket) == {"type": "auth.expiring", "expires_at": first_expiry}
    status, renewed, _ = call(
        "POST", f"{cursor_server.http}/api/auth/refresh", {"refresh": alice["refresh"]}
    )
    assert status == 200, renewed
    await socket.send(json.dumps({"type": "auth", "token": renewed["access"]}))
    frame = await recv(socket)
    assert frame["type"] == "auth.ok" and frame["expires_at"] > first_expiry
    assert await close_code(socket, timeout=10) == 4401
    assert time.time() >= frame["expires_at"] - 0.05


async def test_logout_closes_a_custom_socket_4403(cursor_server):
    alice = login(cursor_server.http, "alice", PASSWORD)
    socket = await open_cursors(cursor_server, alice["access"])
    status, _, _ = call(
        "POST", f"{cursor_server.http}/api/auth/logout", token=alice["access"]
    )
    assert status == 204
    assert await close_code(socket, timeout=5) == 4403


async def test_shutdown_closes_a_custom_socket_4503(cursor_server):
    alice = login(cursor_server.http, "alice", PASSWORD)
    socket = await open_cursors(cursor_server, alice["access"])
    cursor_server.process.send_signal(signal.SIGTERM)
    assert await close_code(socket, timeout=10) == 4503
