"""Cross-site WebSocket hijacking guard: the handshake's `Origin` (docs/protocol.md §4.1).

Built on Channels' `OriginValidator`, but `AllowedHostsOriginValidator` does not
fit: it refuses a missing Origin (native clients send none) and captures
ALLOWED_HOSTS once at import (tests cannot override it). Here settings are read
per handshake, a missing Origin passes, and `null` or a repeated header fails.
"""

import logging
from urllib.parse import urlparse

from channels.security.websocket import OriginValidator, WebsocketDenier
from django.conf import settings
from django.http.request import is_same_domain

from core import metrics

logger = logging.getLogger(__name__)


class OriginCheck(OriginValidator):
    """Allow `AUTHSOCKET_ALLOWED_ORIGINS`, else http(s) of each allowed host."""

    def __init__(self, application):
        super().__init__(application, allowed_origins=[])

    async def __call__(self, scope, receive, send):
        origins = [
            value for name, value in scope.get("headers", ()) if name == b"origin"
        ]
        if not origins or (len(origins) == 1 and self.is_allowed(origins[0])):
            return await self.application(scope, receive, send)
        logger.info("websocket refused: origin not allowed")
        metrics.handshake_refused("origin", None)
        return await WebsocketDenier()(scope, receive, send)

    def is_allowed(self, raw: bytes) -> bool:
        text = raw.decode("latin-1").strip()
        if not text or text == "null":
            return False
        try:
            parsed = urlparse(text)
            parsed.port  # noqa: B018  (raises ValueError on a bad port)
        except ValueError:
            return False
        if not parsed.hostname:
            return False
        configured = settings.AUTHSOCKET_ALLOWED_ORIGINS
        if configured:
            self.allowed_origins = configured
            return self.validate_origin(parsed)
        return parsed.scheme in {"http", "https"} and any(
            is_same_domain(parsed.hostname, host.strip("[]").lower())
            for host in settings.ALLOWED_HOSTS
        )
