"""A project's own stream kinds, end to end on real daphne (docs/streams.md).

tests/kindsapp declares `memo:` and `board:` with realtime's public API
only and is installed by tests/settings_kinds.py; everything below goes
through the wire, the HTTP APIs and `manage.py`, as a project would.
"""

import asyncio
import re
import subprocess

import pytest

from tests.http import call
from tests.servers import PROJECT, PYTHON, DaphneServer, manage
from tests.wsclient import login_socket, receive, request, silent

pytestmark = pytest.mark.e2e  # async tests run in asyncio mode "auto"

FORBIDDEN = {
    "type": "error",
    "code": "forbidden",
    "detail": "No such stream, or not allowed.",
}


@pytest.fixture
def kinds_env(e2e_env):
    return {**e2e_env, "DJANGO_SETTINGS_MODULE": "tests.settings_kinds"}


@pytest.fixture
def kinds_server(kinds_env, tmp_path):
    server = DaphneServer(kinds_env, log_path=tmp_path / "daphne.log").start()
    yield server
    server.stop()


def readers(server, method: str, key: str, username: str) -> None:
    status, body, _ = call(
        method, f"{server.http}/kinds-test/memo/{key}/readers/{username}"
    )
    assert status == 204, body


async def test_a_project_kind_on_every_interface(kinds_server, kinds_env):
    server = kinds_server
    for username in ("alice", "bob"):
        readers(server, "PUT", "plan", username)
    alice, alice_tokens = await login_socket(server, "alice")
    bob, _ = await login_socket(server, "bob")
    carol, carol_tokens = await login_socket(server, "carol")
    try:
        # Subscribe: the kind decides; a stranger cannot tell it exists.
        for socket in (alice, bob):
            answer = await request(socket, {"type": "subscribe", "stream": "memo:plan"})
            assert answer == {"type": "subscribed", "stream": "memo:plan", "last_id": 0}
        for name in ("memo:plan", "memo:nothing", "nokind:plan"):
            assert await request(carol, {"type": "subscribe", "stream": name}) == (
                FORBIDDEN
            )

        # Publish: acknowledged, then delivered to every subscriber.
        for n in range(1, 6):
            ack = await request(
                alice, {"type": "publish", "stream": "memo:plan", "data": n}
            )
            assert ack == {"type": "published", "stream": "memo:plan", "id": n}
            for socket in (alice, bob):
                message = await receive(socket)
                assert (message["stream"], message["id"], message["data"]) == (
                    "memo:plan",
                    n,
                    n,
                )
        assert await request(
            carol, {"type": "publish", "stream": "memo:plan", "data": 0}
        ) == (FORBIDDEN)

        # Retention: the kind keeps 3; `since` older than that is a reset.
        pruned = await asyncio.to_thread(manage, kinds_env, "prune_history")
        assert "memo: 2 message(s) pruned" in pruned
        late, _ = await login_socket(server, "bob")
        answer = await request(
            late, {"type": "subscribe", "stream": "memo:plan", "since": 1}
        )
        assert answer == {
            "type": "subscribed",
            "stream": "memo:plan",
            "last_id": 5,
            "reset": True,
        }
        assert [(await receive(late))["id"] for _ in range(3)] == [3, 4, 5]
        resumed, _ = await login_socket(server, "alice")
        answer = await request(
            resumed, {"type": "subscribe", "stream": "memo:plan", "since": 4}
        )
        assert "reset" not in answer and (await receive(resumed))["id"] == 5
        for socket in (late, resumed):
            await socket.close()

        # History over REST: as kept; hidden is a 404 like unknown.
        status, page, _ = call(
            "GET",
            f"{server.http}/api/streams/memo:plan/messages",
            token=alice_tokens["access"],
        )
        assert status == 200 and [m["id"] for m in page] == [3, 4, 5]
        status, _, _ = call(
            "GET",
            f"{server.http}/api/streams/memo:plan/messages",
            token=carol_tokens["access"],
        )
        assert status == 404

        # Re-evaluation: bob leaves the group, the app says rights changed.
        readers(server, "DELETE", "plan", "bob")
        assert await receive(bob) == {
            "type": "unsubscribed",
            "stream": "memo:plan",
            "reason": "forbidden",
        }
        assert await silent(alice)
        await request(alice, {"type": "publish", "stream": "memo:plan", "data": 6})
        assert (await receive(alice))["id"] == 6
        assert await silent(bob)
        assert await request(bob, {"type": "subscribe", "stream": "memo:plan"}) == (
            FORBIDDEN
        )
    finally:
        for socket in (alice, bob, carol):
            await socket.close()


async def test_the_server_api_honours_who_may_publish(kinds_server, kinds_env):
    server = kinds_server
    output = await asyncio.to_thread(
        manage, kinds_env, "service_key", "create", "kinds"
    )
    key = re.search(r"\bask_\S+", output).group(0)
    headers = {"Authorization": f"ApiKey {key}"}
    status, body, _ = call(
        "POST",
        f"{server.http}/api/server/publish",
        {"stream": "memo:plan", "data": "from a backend"},
        headers=headers,
    )
    assert status == 201 and (body["stream"], body["id"]) == ("memo:plan", 1)
    status, body, _ = call(
        "POST",
        f"{server.http}/api/server/publish",
        {"stream": "board:news", "data": "no"},
        headers=headers,
    )
    assert status == 403 and body["code"] == "forbidden"

    # The project's own code still publishes there; it numbers, keeps nothing.
    carol, carol_tokens = await login_socket(server, "carol")
    try:
        answer = await request(carol, {"type": "subscribe", "stream": "board:news"})
        assert answer["last_id"] == 0
        status, body, _ = call("POST", f"{server.http}/kinds-test/board/news", "hi")
        assert (status, body) == (201, {"id": 1})
        message = await receive(carol)
        assert (message["stream"], message["id"]) == ("board:news", 1)
        answer = await request(
            carol, {"type": "subscribe", "stream": "board:news", "since": 0}
        )
        assert answer["code"] == "bad_request"
        status, _, _ = call(
            "GET",
            f"{server.http}/api/streams/board:news/messages",
            token=carol_tokens["access"],
        )
        assert status == 404
    finally:
        await carol.close()


def test_overlapping_kinds_stop_the_start(e2e_env):
    env = {**e2e_env, "DJANGO_SETTINGS_MODULE": "tests.settings_kinds_clash"}
    result = subprocess.run(
        [PYTHON, "manage.py", "check"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "room:<key>" in result.stderr
    assert "tests.kindsclash.stream_kinds.ChatRooms" in result.stderr
