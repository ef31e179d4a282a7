"""Token lifecycle across real daphne processes (docs/protocol.md §3, §4).

The revocations here are made by ANOTHER process (`manage.py shell`) while the
server runs the in-memory channel layer: no channel-layer message can reach
it, so only its revocation poll can close the sockets. Tickets are raced by
20 clients against two server processes sharing PostgreSQL.
"""

import asyncio
import json
import time

import pytest
import websockets

from tests.http import call, login
from tests.servers import DaphneServer, manage
from tests.services import daphne_on_postgres, require_redis

pytestmark = [pytest.mark.e2e]

POLL_BOUND = 1.5  # the poll's 0.5 s period + a query + scheduling slack


async def open_socket(server, access: str):
    socket = await websockets.connect(f"{server.ws}?token={access}", open_timeout=10)
    welcome = json.loads(await asyncio.wait_for(socket.recv(), 10))
    assert welcome["type"] == "welcome"
    return socket


async def closed(socket, timeout: float) -> tuple[int | None, float]:
    """Read until the server closes; returns `(close code, wall time)`."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                await socket.recv()
    except websockets.ConnectionClosed as closed:
        return (closed.rcvd.code if closed.rcvd else None), time.time()


async def answers_ping(socket) -> bool:
    await socket.send(json.dumps({"type": "ping"}))
    return json.loads(await asyncio.wait_for(socket.recv(), 5)) == {"type": "pong"}


REVOKED_AT = """
from accounts.models import SessionRevocation
print(SessionRevocation.objects.latest("revoked_at").revoked_at.timestamp())
"""


def shell(env, code: str) -> float:
    """Run `code` in `manage.py shell`; returns when its revocation was stamped.

    The stamp is taken inside the revoking transaction, just before its
    commit, so latencies measured from it are upper bounds.
    """
    output = manage(env, "shell", "-c", code + REVOKED_AT)
    return float(output.strip().splitlines()[-1])


CHANGE_PASSWORD = """
from accounts.models import User
user = User.objects.get(username="alice")
user.set_password("changed-elsewhere-Passw0rd")
user.save()
"""

DEACTIVATE = """
from accounts.models import User
user = User.objects.get(username="alice")
user.is_active = False
user.save()
"""


@pytest.mark.parametrize(
    "change", [CHANGE_PASSWORD, DEACTIVATE], ids=["password", "deactivation"]
)
async def test_change_made_by_another_process_closes_sockets_by_the_poll(
    daphne_server, e2e_env, change
):
    alices = [login(daphne_server.http, "alice", "authsocket-demo") for _ in range(2)]
    bobs = login(daphne_server.http, "bob", "authsocket-demo")
    sockets = [await open_socket(daphne_server, t["access"]) for t in alices]
    bob_socket = await open_socket(daphne_server, bobs["access"])
    try:
        waits = [asyncio.ensure_future(closed(s, 60)) for s in sockets]
        committed = await asyncio.to_thread(shell, e2e_env, change)
        results = await asyncio.gather(*waits)
        for code, closed_at in results:
            assert code == 4403
            latency = closed_at - committed
            print(f"revocation by another process → close 4403: {latency:.3f} s")
            assert latency < POLL_BOUND
        assert await answers_ping(bob_socket)
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(
                f"{daphne_server.ws}?token={alices[0]['access']}", open_timeout=10
            )
        assert refused.value.response.status_code == 403
    finally:
        for socket in [*sockets, bob_socket]:
            await socket.close()


@pytest.mark.services
async def test_twenty_concurrent_uses_of_one_ticket_on_two_processes_one_wins(
    tmp_path,
):
    async with daphne_on_postgres(tmp_path, count=2) as servers:
        tokens = login(servers[0].http, "alice", "authsocket-demo")
        status, body, _ = call(
            "POST", f"{servers[0].http}/api/auth/ticket", token=tokens["access"]
        )
        assert status == 200
        ticket = body["ticket"]

        async def attempt(server) -> bool:
            try:
                socket = await websockets.connect(
                    f"{server.ws}?ticket={ticket}", open_timeout=15
                )
            except websockets.InvalidStatus as refused:
                assert refused.response.status_code == 403
                return False
            async with socket:
                frame = json.loads(await asyncio.wait_for(socket.recv(), 10))
                assert frame["type"] == "welcome"
                return True

        results = await asyncio.gather(*(attempt(servers[i % 2]) for i in range(20)))
        assert results.count(True) == 1, results


@pytest.mark.services
async def test_deleting_a_sid_with_nul_on_postgresql_is_404_not_500(tmp_path):
    """PostgreSQL refuses NUL in a text query (a DataError: it answered 500);
    such a sid was never issued, so it is the unknown sid's 404."""
    async with daphne_on_postgres(tmp_path) as (server,):
        tokens = login(server.http, "alice", "authsocket-demo")
        for sid in ("%00", "a%00b"):
            status, body, _ = call(
                "DELETE",
                f"{server.http}/api/auth/sessions/{sid}",
                token=tokens["access"],
            )
            assert (status, body) == (
                404,
                {"detail": "Not found.", "code": "not_found"},
            )
        status, _, _ = call("GET", f"{server.http}/api/me", token=tokens["access"])
        assert status == 200


async def test_lifecycle_close_codes_reach_a_real_client(e2e_env, tmp_path):
    """4401, 4403 and 4409 through daphne itself, not only `channels.testing`."""
    env = {
        **e2e_env,
        "AUTHSOCKET_ACCESS_TTL": "3",
        "AUTHSOCKET_LEEWAY": "0",
        "AUTHSOCKET_MAX_CONNECTIONS_PER_USER": "1",
    }
    server = DaphneServer(env, log_path=tmp_path / "daphne.log")
    await asyncio.to_thread(server.start)
    try:
        alice = login(server.http, "alice", "authsocket-demo")
        bob = login(server.http, "bob", "authsocket-demo")
        expiring = await open_socket(server, alice["access"])
        over_limit = await websockets.connect(
            f"{server.ws}?token={alice['access']}", open_timeout=10
        )
        assert (await closed(over_limit, 5))[0] == 4409
        revoked = await open_socket(server, bob["access"])
        waiting = asyncio.ensure_future(closed(revoked, 5))
        started = time.time()
        status, _, _ = await asyncio.to_thread(
            call, "POST", f"{server.http}/api/auth/logout", None, bob["access"]
        )
        assert status == 204
        code, closed_at = await waiting
        print(f"logout (channel layer) → close 4403: {closed_at - started:.3f} s")
        assert code == 4403 and closed_at - started < 1.0
        warning = json.loads(await asyncio.wait_for(expiring.recv(), 5))
        assert warning["type"] == "auth.expiring"
        code, closed_at = await closed(expiring, 5)
        assert code == 4401
        assert closed_at >= warning["expires_at"]
    finally:
        server.stop()


@pytest.mark.services
async def test_logout_on_one_process_closes_the_socket_on_another_via_redis(
    e2e_env, tmp_path
):
    """The fast path across processes: the channel-layer message, well under the poll,
    and one view of the session on B once it has closed the socket."""
    env = {**e2e_env, "REDIS_URL": require_redis()}
    servers = [DaphneServer(env, log_path=tmp_path / f"d{i}.log") for i in range(2)]
    try:
        for server in servers:
            await asyncio.to_thread(server.start)
        tokens = login(servers[0].http, "carol", "authsocket-demo")
        socket = await open_socket(servers[1], tokens["access"])
        waiting = asyncio.ensure_future(closed(socket, 5))
        started = time.time()
        status, _, _ = await asyncio.to_thread(
            call, "POST", f"{servers[0].http}/api/auth/logout", None, tokens["access"]
        )
        answered = time.time()
        assert status == 204
        code, closed_at = await waiting
        print(
            f"logout on A → close 4403 on B (Redis): {closed_at - started:.3f} s "
            f"(the logout request itself: {answered - started:.3f} s)"
        )
        assert code == 4403 and closed_at - started < 1.0
        # B learned of the revocation from the message: from then on it refuses
        # the session's tokens too, without waiting for its own poll.
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(
                f"{servers[1].ws}?token={tokens['access']}", open_timeout=10
            )
        assert refused.value.response.status_code == 403
    finally:
        for server in servers:
            server.stop()
