"""authsocket's ASGI app with a slow-to-accept path, for a real daphne in tests.

`/ws/slow/` is served by `SlowConsumer`, whose handshake waits until
`GET /slow-accept/release`; that request answers 204 once the consumer has
accepted and welcomed (or 504 after a bounded wait). Everything else is
authsocket's own application.
"""

import asyncio

from channels.routing import ProtocolTypeRouter
from django.urls import re_path

from authsocket.asgi import application as project_application
from realtime.routing import websocket_application, websocket_routes
from tests.apps.slowaccept.consumers import WAIT, SlowConsumer, gates

RELEASE_PATH = "/slow-accept/release"
project_http = project_application.application_mapping["http"]


async def http(scope, receive, send):
    if scope["path"] != RELEASE_PATH:
        return await project_http(scope, receive, send)
    held = gates()
    held.release.set()
    try:
        await asyncio.wait_for(held.accepted.wait(), WAIT)
        status = 204
    except TimeoutError:
        status = 504
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b""})


application = ProtocolTypeRouter(
    {
        "http": http,
        "websocket": websocket_application(
            websocket_routes(re_path(r"^ws/slow/$", SlowConsumer.as_asgi()))
        ),
    }
)
