"""Routes for WebSockets: authsocket's `/ws/`, a project's own paths, a refusal for the rest.

The project lists its paths once, in authsocket/routing.py; every path then
goes through the same stack (Origin check, JWT middleware, router).

`websocket_routes` refuses, when the routes are defined, a path served by a
consumer not built on `AuthenticatedConsumer`: the middleware resolves the
user, but nothing would refuse an anonymous handshake, expire or revoke the
socket (docs/extending.md).
"""

import logging

from channels.routing import URLRouter
from channels.security.websocket import WebsocketDenier
from django.urls import path, re_path

from realtime.base_consumer import AuthenticatedConsumer
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
    """`/ws/`, then `routes` (`path(...)` of your consumers), then a denier for any other path.

    Raises TypeError for a route whose consumer is not an AuthenticatedConsumer.
    """
    for route in routes:
        _route_check(route)
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


def _route_check(route, prefix: str = "") -> None:
    """Refuses a route (and those of a nested URLRouter) that would break the
    guarantees of docs/extending.md on live sockets."""
    shown = prefix + str(route.pattern)
    app = route.callback
    if isinstance(app, URLRouter):
        for inner in app.routes:
            _route_check(inner, shown)
        return
    consumer = getattr(app, "consumer_class", None)  # set by `as_asgi()`
    if not (isinstance(consumer, type) and issubclass(consumer, AuthenticatedConsumer)):
        served = consumer.__name__ if isinstance(consumer, type) else repr(app)
        raise TypeError(
            f"WebSocket route {shown!r} is served by {served}, which is not an "
            "AuthenticatedConsumer: its sockets would be neither refused when "
            "anonymous nor closed when their token expires or their session "
            "is revoked. Build it on realtime.base_consumer.AuthenticatedConsumer "
            "and route `YourConsumer.as_asgi()` (docs/extending.md)."
        )
