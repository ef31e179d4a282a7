"""Brute force: guessing passwords, tokens or tickets is slowed to a crawl.

The in-process login tests in accounts/tests/test_api.py cover the two login
throttles' arithmetic; here they are checked end to end on a real daphne (real
client address, a spoofed X-Forwarded-For, the right password while
throttled), and the `auth` frame and the ticket endpoint are flooded.
"""

import json

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from rest_framework.test import APIClient

from realtime.protocol import CloseCode, ErrorCode, ServerFrame
from realtime.tests.sockets import db, welcomed
from tests.http import call
from tests.reliability.helpers import communicator
from tests.servers import DaphneServer

# --- the auth frame -----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_auth_frame_flood_is_rate_limited_then_closed_4429(
    alice, open_session, settings
):
    # Burst 10, closed after 5 more; per minute, so a slow (loaded) machine
    # refills almost nothing while the flood is sent.
    settings.AUTHSOCKET_FRAME_RATE = "5/min"
    tokens = await db(open_session, alice)
    comm = communicator("query", tokens.access)
    await welcomed(comm)
    for attempt in range(40):
        await comm.send_json_to({"type": "auth", "token": f"guess.{attempt}.x"})
    answers = []
    while True:
        output = await comm.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            break
        answers.append(json.loads(output["text"])["code"])
    assert output["code"] == CloseCode.RATE_LIMITED
    guesses = answers.count(ErrorCode.INVALID_TOKEN)
    limited = answers.count(ErrorCode.RATE_LIMITED)
    assert (
        answers
        == [ErrorCode.INVALID_TOKEN] * guesses + [ErrorCode.RATE_LIMITED] * limited
    )
    # The burst (2N) plus what refilled while sending: never the whole flood.
    assert guesses in (10, 11)
    # N strikes are answered `rate_limited`, the next one closes; each frame
    # let through by a refill takes one strike back (realtime/ratelimit.py).
    patience = 5
    assert limited == patience + (guesses - 10)
    assert guesses + limited < 40
    await comm.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_auth_frames_at_the_sustained_rate_are_all_answered(
    alice, open_session, settings
):
    """The limiter is not a wall: a client within its burst is fully served."""
    settings.AUTHSOCKET_FRAME_RATE = "5/s"
    tokens = await db(open_session, alice)
    comm = communicator("query", tokens.access)
    await welcomed(comm)
    for ref in range(10):
        await comm.send_json_to({"type": "auth", "token": "x", "ref": ref})
        answer = await comm.receive_json_from(timeout=5)
        assert (answer["type"], answer["code"], answer["ref"]) == (
            ServerFrame.ERROR,
            ErrorCode.INVALID_TOKEN,
            ref,
        )
    await comm.disconnect()


# --- the ticket endpoint ------------------------------------------------------


@pytest.mark.django_db
def test_ticket_endpoint_is_throttled_per_user_with_retry_after(
    alice, bob, open_session, settings
):
    settings.AUTHSOCKET_TICKET_THROTTLE = "3/min"
    first, second = open_session(alice), open_session(alice)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {first.access}")
    codes = [api.post("/api/auth/ticket").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    throttled = api.post("/api/auth/ticket")
    assert throttled.json()["code"] == "throttled"
    assert 0 < int(throttled["Retry-After"]) <= 60
    # Per user, not per session: another session of alice is throttled too.
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {second.access}")
    assert api.post("/api/auth/ticket").status_code == 429
    # Another user is not affected.
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {open_session(bob).access}")
    assert api.post("/api/auth/ticket").status_code == 200


# --- login, end to end ----------------------------------------------------------


@pytest.fixture
def throttled_server(e2e_env, tmp_path):
    env = dict(
        e2e_env,
        AUTHSOCKET_LOGIN_THROTTLE="3/min",
        AUTHSOCKET_LOGIN_ADDRESS_THROTTLE="6/min",
    )
    server = DaphneServer(env, log_path=tmp_path / "daphne.log").start()
    yield server
    server.stop()


def attempt(server, username, password, **headers):
    return call(
        "POST",
        f"{server.http}/api/auth/login",
        {"username": username, "password": password},
        headers=headers,
    )


@pytest.mark.e2e
def test_login_throttles_hold_on_a_real_server(throttled_server):
    server = throttled_server
    # Per (username, address): the 4th guess is throttled, and so is the
    # right password, even with a forged X-Forwarded-For (no trusted proxy).
    statuses = [attempt(server, "alice", f"guess{i}")[0] for i in range(3)]
    assert statuses == [401, 401, 401]
    status, body, headers = attempt(
        server, "alice", "authsocket-demo", **{"X-Forwarded-For": "203.0.113.9"}
    )
    assert (status, body["code"]) == (429, "throttled")
    assert 0 < int(headers["Retry-After"]) <= 60
    # Another username from the same address still gets through...
    assert attempt(server, "bob", "authsocket-demo")[0] == 200
    assert attempt(server, "carol", "wrong")[0] == 401
    # ...until the per-address budget (6/min, any username, throttled attempts
    # included) is spent: even the right password of a fresh username waits.
    status, body, _ = attempt(server, "bob", "authsocket-demo")
    assert (status, body["code"]) == (429, "throttled")
    assert "Traceback" not in server.logs()


class UnreachableCache:
    """A shared cache whose server is down (as Django's RedisCache raises)."""

    def get(self, *args, **kwargs):
        raise RedisConnectionError("Connection refused")

    set = get


@pytest.mark.django_db
def test_login_throttle_counts_in_memory_while_the_shared_cache_is_down(
    alice, settings, monkeypatch
):
    from accounts import throttles

    monkeypatch.setattr(throttles, "shared_cache", UnreachableCache())
    monkeypatch.setattr(
        throttles.SettingsRateThrottle, "cache", throttles.FallbackCache()
    )
    settings.AUTHSOCKET_LOGIN_THROTTLE = "3/min"
    api = APIClient()

    def login(password):
        body = {"username": "alice", "password": password}
        return api.post("/api/auth/login", body, format="json").status_code

    assert [login("wrong") for _ in range(3)] == [401, 401, 401]  # not 500
    assert login("pw-alice-123") == 429
