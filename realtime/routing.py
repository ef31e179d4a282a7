"""Routes for WebSockets: authsocket's `/ws/`, a project's own paths, a refusal for the rest.

The project lists its paths once, in authsocket/routing.py; every path then
goes through the same stack (Origin check, JWT middleware, router).
"""

import logging

from channels.routing import URLRouter
from channels.security.websocket import WebsocketDenier
from django.urls import path, re_path

from realtime.consumers import StreamConsumer
from realtime.middleware import JWTAuthMiddleware
from realtime.origin import OriginCheck
from realtime.socket_metrics import SocketMetricsMiddleware

logger = logging.getLogger(__name__)


class NoRouteDenier(WebsocketDenier):
    """Refuses a path no consumer serves, with the log line every refusal gets.

    The path is not logged: a client may have put a credential in it.
    """

    async def connect(self):
        logger.info("websocket refused: no WebSocket endpoint at this path")
        await self.close()


def websocket_routes(*routes) -> list:
    """`/ws/`, then `routes` (`path(...)` of your consumers), then a denier for any other path."""
    return [
        path("ws/", StreamConsumer.as_asgi()),
        *routes,
        # Any other path is refused cleanly instead of raising "No route found".
        re_path(r"", NoRouteDenier.as_asgi()),
    ]


def websocket_application(routes: list):
    """The ASGI app for WebSockets: the Origin check outermost (a cross-site page
    never reaches token parsing), then the JWT middleware, then the counting of
    handshakes and closes for /metrics, then the routes."""
    return OriginCheck(JWTAuthMiddleware(SocketMetricsMiddleware(URLRouter(routes))))
