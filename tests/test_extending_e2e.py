"""docs/extending.md on real daphne: a project's kinds and paths, as deployed.

Two processes of tests/settings_kinds.py share one Redis channel layer and
one database, as a deployment behind a load balancer does: `rights_changed`
re-checks every socket subscribed and `publish` delivers to every
subscriber, wherever the change is made and wherever the socket is. And a
socket on a project's own path lives beside `/ws/` through what realtime
sends to all of a user's sockets.
"""

import random
import string

import pytest
import websockets

from tests.http import call, login
from tests.servers import DaphneServer, running
from tests.services import require_redis as redis_url
from tests.wsclient import close_code, login_socket, receive, request

pytestmark = pytest.mark.e2e


def readers(server, method: str, key: str, username: str) -> None:
    status, body, _ = call(
        method, f"{server.http}/kinds-test/memo/{key}/readers/{username}"
    )
    assert status == 204, body


@pytest.mark.services
async def test_rights_changed_and_publish_reach_sockets_on_another_process(
    e2e_env, tmp_path
):
    env = {
        **e2e_env,
        "DJANGO_SETTINGS_MODULE": "tests.settings_kinds",
        "REDIS_URL": redis_url(),
    }
    # Keys of their own: the Redis database is shared with other runs.
    memo, board = ("".join(random.choices(string.ascii_lowercase, k=12)) for _ in "mb")
    with (
        running(DaphneServer(env, log_path=tmp_path / "a.log")) as first,
        running(DaphneServer(env, log_path=tmp_path / "b.log")) as second,
    ):
        readers(first, "PUT", memo, "bob")
        bob, _ = await login_socket(second, "bob")
        try:
            for stream in (f"memo:{memo}", f"board:{board}"):
                answer = await request(bob, {"type": "subscribe", "stream": stream})
                assert answer["type"] == "subscribed", answer

            # The project's own code publishes on the first process.
            status, body, _ = call(
                "POST", f"{first.http}/kinds-test/board/{board}", body="news"
            )
            assert status == 201, body
            message = await receive(bob)
            assert (message["stream"], message["id"]) == (f"board:{board}", 1)

            # The right is taken away through the first process.
            readers(first, "DELETE", memo, "bob")
            assert await receive(bob) == {
                "type": "unsubscribed",
                "stream": f"memo:{memo}",
                "reason": "forbidden",
            }
        finally:
            await bob.close()


async def test_leaving_a_room_keeps_the_users_cursor_socket_and_its_place(
    e2e_env, tmp_path
):
    """Leaving a room re-checks `room:team` on every socket of the user (docs/
    streams.md): her socket on a project's own path has nothing to re-check.
    It must stay open, and once she closes it her place under the per-user
    limit (1 here) must be free again."""
    env = {**e2e_env, "AUTHSOCKET_MAX_CONNECTIONS_PER_USER": "1"}
    server = DaphneServer(
        env, log_path=tmp_path / "daphne.log", app="tests.apps.cursors.asgi:application"
    )
    with running(server):
        access = login(server.http, "alice", "authsocket-demo")["access"]
        url = f"ws://127.0.0.1:{server.port}/ws/cursors/1/?token={access}"
        cursors = await websockets.connect(url, open_timeout=10)
        try:
            assert (await receive(cursors))["type"] == "welcome"
            status, body, _ = call(
                "DELETE", f"{server.http}/api/rooms/team/membership", token=access
            )
            assert status == 204, body
            pong = await request(cursors, {"type": "ping", "ref": 1})
            assert pong == {"type": "pong", "ref": 1}
        finally:
            await cursors.close()
        again = await websockets.connect(url, open_timeout=10)
        try:
            assert (await receive(again))["type"] == "welcome"
            assert await close_code(again, timeout=1) is None  # not 4409
        finally:
            await again.close()
