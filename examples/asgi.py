"""authsocket's ASGI app with the example's WebSocket paths routed.

What authsocket/asgi.py becomes once a project lists its paths in
authsocket/routing.py; kept apart here so that the product stays as it is.
Served by `make run-example` as `examples.asgi:application`.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.settings")

from channels.routing import ProtocolTypeRouter  # noqa: E402

from authsocket.asgi import application as project_application  # noqa: E402
from examples.routing import websocket_urlpatterns  # noqa: E402
from realtime.routing import websocket_application  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": project_application.application_mapping["http"],
        "websocket": websocket_application(websocket_urlpatterns),
    }
)
