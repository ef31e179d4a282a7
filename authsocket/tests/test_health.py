"""authsocket.health: /healthz and /readyz in front of Django (ASGI level)."""

import asyncio
import json

import pytest
from channels.testing import HttpCommunicator

from authsocket import health


async def inner(scope, receive, send):
    await send({"type": "http.response.start", "status": 418, "headers": []})
    await send({"type": "http.response.body", "body": b"django"})


app = health.HealthMiddleware(inner)


async def get(path, method="GET"):
    response = await HttpCommunicator(app, method, path).get_response(timeout=5)
    body = json.loads(response["body"]) if response["body"] else None
    return response["status"], body, dict(response["headers"])


async def test_healthz_answers_without_touching_django():
    status, body, headers = await get("/healthz")
    assert (status, body) == (200, {"status": "ok"})
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"cache-control"] == b"no-store"


@pytest.mark.django_db(transaction=True)
async def test_readyz_is_200_when_database_and_layer_answer():
    status, body, _ = await get("/readyz")
    assert status == 200
    assert body["checks"] == {"database": "ok", "channel_layer": "ok"}


async def test_readyz_is_503_naming_the_failed_check(monkeypatch):
    async def broken():
        raise ConnectionError("down")

    async def fine():
        return None

    monkeypatch.setattr(health, "CHECKS", {"database": fine, "channel_layer": broken})
    status, body, _ = await get("/readyz")
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["checks"] == {"database": "ok", "channel_layer": "error"}


async def test_a_hanging_check_is_a_timeout_not_a_hang(monkeypatch):
    async def hangs():
        await asyncio.Event().wait()

    monkeypatch.setattr(health, "CHECK_TIMEOUT", 0.1)
    monkeypatch.setattr(health, "CHECKS", {"database": hangs})
    status, body, _ = await get("/readyz")
    assert (status, body["checks"]) == (503, {"database": "timeout"})


async def test_other_methods_are_405_and_other_paths_reach_django():
    status, _, headers = await get("/healthz", method="POST")
    assert status == 405
    assert headers[b"allow"] == b"GET, HEAD"
    for path in ("/healthz/x", "/api/me"):
        response = await HttpCommunicator(app, "GET", path).get_response(timeout=5)
        assert (response["status"], response["body"]) == (418, b"django")
