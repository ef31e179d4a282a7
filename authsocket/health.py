"""Health endpoints for load balancers and orchestrators.

`GET /healthz` → 200 while the process serves at all (liveness).
`GET /readyz` → 200 when the database answers `SELECT 1` and a message makes a
round trip through the channel layer; otherwise 503 with what failed.

They are answered in front of Django, by `HealthMiddleware` in `asgi.py`,
because probes address a process directly (`Host: 127.0.0.1:8001`, plain
HTTP): Django's ALLOWED_HOSTS check and SECURE_SSL_REDIRECT would turn them
into 400s and redirects.
"""

import asyncio
import json
import logging
import time
import uuid

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import connection

logger = logging.getLogger("authsocket.health")

HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
CHECK_TIMEOUT = 2.0


def _database_ping() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


async def check_database() -> None:
    """Raise unless the default database answers `SELECT 1`."""
    await database_sync_to_async(_database_ping)()


async def check_channel_layer() -> None:
    """Raise unless a message sent to a fresh channel comes back from the layer."""
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    channel = await layer.new_channel()
    nonce = uuid.uuid4().hex
    await layer.send(channel, {"type": "health.ping", "nonce": nonce})
    message = await layer.receive(channel)
    if message.get("nonce") != nonce:
        raise RuntimeError("channel layer returned another message")


CHECKS = {"database": check_database, "channel_layer": check_channel_layer}


async def _run_check(name, check) -> tuple[str, str]:
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT)
    except TimeoutError:
        logger.warning("readyz: %s did not answer within %.1fs", name, CHECK_TIMEOUT)
        return name, "timeout"
    except Exception as e:  # noqa: BLE001 - any failure means "not ready"
        logger.warning("readyz: %s failed: %s", name, type(e).__name__)
        return name, "error"
    return name, "ok"


async def readiness() -> tuple[int, dict]:
    """Run every check concurrently; 200 only if all of them pass."""
    started = time.monotonic()
    results = dict(await asyncio.gather(*(_run_check(n, c) for n, c in CHECKS.items())))
    ready = all(state == "ok" for state in results.values())
    body = {
        "status": "ok" if ready else "unavailable",
        "checks": results,
        "duration_ms": round((time.monotonic() - started) * 1000),
    }
    return (200 if ready else 503), body


class HealthMiddleware:
    """ASGI middleware answering /healthz and /readyz, passing the rest on."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        path = scope.get("path")
        if scope["type"] != "http" or path not in (HEALTH_PATH, READY_PATH):
            return await self.application(scope, receive, send)
        if scope["method"] not in ("GET", "HEAD"):
            return await _respond(send, scope, 405, {"detail": "GET only"})
        if path == HEALTH_PATH:
            return await _respond(send, scope, 200, {"status": "ok"})
        status, body = await readiness()
        return await _respond(send, scope, status, body)


async def _respond(send, scope, status: int, body: dict) -> None:
    payload = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"cache-control", b"no-store"),
    ]
    if status == 405:
        headers.append((b"allow", b"GET, HEAD"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send(
        {
            "type": "http.response.body",
            "body": b"" if scope["method"] == "HEAD" else payload,
        }
    )
