"""`GET /metrics`: this process's figures in the Prometheus text format.

Answered in front of Django, like /healthz: no database, no session, no
ALLOWED_HOSTS (Prometheus scrapes each process at 127.0.0.1:<port>), so the
figures stay visible while the database is down. The bearer token is
compared in constant time; no token configured means no endpoint (404).
"""

import hmac
import json

from django.conf import settings
from prometheus_client import REGISTRY, exposition, generate_latest

METRICS_PATH = "/metrics"
# The classic text format every Prometheus version reads (newer clients
# default to announcing 1.0.0, which Prometheus 2 does not know).
CONTENT_TYPE = getattr(
    exposition, "CONTENT_TYPE_PLAIN_0_0_4", "text/plain; version=0.0.4; charset=utf-8"
)


class MetricsMiddleware:
    """ASGI middleware answering /metrics, passing every other request on."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("path") != METRICS_PATH:
            return await self.application(scope, receive, send)
        status, content, extra_headers = self._answer(scope)
        await _respond(
            send, status, content, extra_headers, head=scope["method"] == "HEAD"
        )

    def _answer(self, scope):
        """`(status, (content type, body), extra headers)` for this request."""
        token = settings.AUTHSOCKET_METRICS_TOKEN
        if not token:
            return 404, _json({"detail": "Not found."}), ()
        if not _authorized(scope, token):
            detail = {"detail": "Metrics need their bearer token."}
            return 401, _json(detail), [(b"www-authenticate", b"Bearer")]
        if scope["method"] not in ("GET", "HEAD"):
            return 405, _json({"detail": "GET only"}), [(b"allow", b"GET, HEAD")]
        return 200, (CONTENT_TYPE.encode(), generate_latest(REGISTRY)), ()


def _authorized(scope, token: str) -> bool:
    """One `Authorization: Bearer <token>` header, compared in constant time."""
    values = [v for name, v in scope.get("headers", ()) if name == b"authorization"]
    if len(values) != 1:
        return False
    scheme, _, credential = values[0].partition(b" ")
    if scheme.lower() != b"bearer":
        return False
    return hmac.compare_digest(credential.strip(), token.encode())


def _json(body: dict) -> tuple[bytes, bytes]:
    return b"application/json", json.dumps(body).encode()


async def _respond(send, status: int, content, extra_headers, *, head: bool) -> None:
    """The answer; to HEAD, its headers (Content-Length that of the body a
    GET would get, as RFC 9110 §9.3.2 asks) and no body."""
    content_type, payload = content
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(payload)).encode()),
        (b"cache-control", b"no-store"),
        *extra_headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else payload})
