"""authsocket's ASGI app with the cursor path routed, for a real daphne in tests.

The same as authsocket/asgi.py after a project lists its path in
authsocket/routing.py (docs/extending.md); served as
`tests.apps.cursors.asgi:application`, so the project's routing stays as is.
"""

from channels.routing import ProtocolTypeRouter

from authsocket.asgi import application as project_application
from realtime.routing import websocket_application
from tests.apps.cursors.routing import websocket_urlpatterns

application = ProtocolTypeRouter(
    {
        "http": project_application.application_mapping["http"],
        "websocket": websocket_application(websocket_urlpatterns),
    }
)
