from django.urls import re_path

from examples.shareddoc.consumers import CursorConsumer
from realtime.routing import websocket_routes

websocket_urlpatterns = websocket_routes(
    # Bounded: the id ends up in a channel-layer group name (< 100 characters).
    re_path(r"^ws/docs/(?P<pk>[1-9][0-9]{0,17})/cursors/$", CursorConsumer.as_asgi()),
)
