from django.urls import re_path

from realtime.routing import websocket_routes
from tests.apps.cursors.consumers import CursorConsumer

websocket_urlpatterns = websocket_routes(
    # Bounded: the id ends up in a channel-layer group name (< 100 characters).
    re_path(r"^ws/cursors/(?P<doc>[0-9]{1,18})/$", CursorConsumer.as_asgi()),
)
