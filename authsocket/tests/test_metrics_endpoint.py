"""authsocket.metrics_endpoint: GET /metrics in front of Django (ASGI level)."""

import os

import pytest
from channels.testing import HttpCommunicator

from authsocket.metrics_endpoint import MetricsMiddleware
from tests.servers import run_manage

TOKEN = "metrics-token-0123456789abcdef"


async def inner(scope, receive, send):
    await send({"type": "http.response.start", "status": 418, "headers": []})
    await send({"type": "http.response.body", "body": b"django"})


app = MetricsMiddleware(inner)


async def get(path="/metrics", authorization=None, method="GET", headers=()):
    headers = list(headers)
    if authorization is not None:
        headers.append((b"authorization", authorization.encode()))
    communicator = HttpCommunicator(app, method, path, headers=headers)
    response = await communicator.get_response(timeout=5)
    return response["status"], response["body"], dict(response["headers"])


@pytest.fixture
def token(settings):
    settings.AUTHSOCKET_METRICS_TOKEN = TOKEN
    return TOKEN


async def test_the_figures_answer_their_bearer_token(token):
    status, body, headers = await get(authorization=f"Bearer {token}")
    assert status == 200
    assert headers[b"content-type"].startswith(b"text/plain; version=0.0.4")
    assert b"# TYPE authsocket_open_sockets gauge" in body
    assert b"# TYPE authsocket_handshakes_total counter" in body
    assert headers[b"cache-control"] == b"no-store"


async def test_the_scheme_is_case_insensitive(token):
    status, _, _ = await get(authorization=f"bearer {token}")
    assert status == 200


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer ",
        "Bearer wrong-token-0123456789abcdef",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        f"Basic {TOKEN}",
        f"ApiKey {TOKEN}",
        TOKEN,
    ],
)
async def test_anyone_else_gets_401_with_a_bearer_challenge(token, authorization):
    status, body, headers = await get(authorization=authorization)
    assert status == 401
    assert headers[b"www-authenticate"] == b"Bearer"
    assert b"authsocket_" not in body


async def test_a_repeated_authorization_header_is_401(token):
    value = f"Bearer {token}".encode()
    headers = [(b"authorization", value), (b"authorization", value)]
    status, _, _ = await get(headers=headers)
    assert status == 401


async def test_no_token_configured_means_no_endpoint(settings):
    settings.AUTHSOCKET_METRICS_TOKEN = ""
    for authorization in (None, f"Bearer {TOKEN}", "Bearer "):
        status, body, _ = await get(authorization=authorization)
        assert status == 404
        assert b"authsocket_" not in body


async def test_other_paths_reach_django_and_post_is_405(token):
    for path in ("/metrics/", "/metricsx", "/api/me"):
        status, body, _ = await get(path, authorization=f"Bearer {token}")
        assert (status, body) == (418, b"django")
    status, _, headers = await get(method="POST", authorization=f"Bearer {token}")
    assert (status, headers[b"allow"]) == (405, b"GET, HEAD")


async def test_head_says_the_length_a_get_would_get_and_sends_no_body(token):
    """RFC 9110 §9.3.2: a HEAD's Content-Length is that of the GET's body."""
    status, body, headers = await get(method="HEAD", authorization=f"Bearer {token}")
    assert (status, body) == (200, b"")
    assert int(headers[b"content-length"]) > len(b"# TYPE authsocket_open_sockets")
    got_body = (await get(authorization="Bearer wrong"))[1]
    status, body, headers = await get(method="HEAD", authorization="Bearer wrong")
    assert (status, body) == (401, b"")
    assert int(headers[b"content-length"]) == len(got_body)


def test_a_short_token_is_served_but_the_deploy_check_warns():
    """A short token is weak, not unusable: `check --deploy` names it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSOCKET_")}
    env.update(DJANGO_DEBUG="1", AUTHSOCKET_METRICS_TOKEN="short")
    assert run_manage(env, "check").returncode == 0
    result = run_manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    assert "authsocket.W001" in result.stderr
    assert "AUTHSOCKET_METRICS_TOKEN is shorter than 16 characters" in result.stderr


def test_a_long_token_passes_the_deploy_check():
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSOCKET_")}
    env.update(DJANGO_DEBUG="1", AUTHSOCKET_METRICS_TOKEN="x" * 16)
    result = run_manage(env, "check", "--deploy")
    assert "authsocket.W001" not in result.stderr + result.stdout
