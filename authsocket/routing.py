"""The project's WebSocket paths, in one place: add your own beside `/ws/`.

Every path listed here gets the Origin check and the JWT middleware; a consumer
built on `realtime.base_consumer.AuthenticatedConsumer` then gets everything
else of docs/protocol.md §4.1–§4.3 (docs/extending.md). Unlisted paths are
refused.
"""

from realtime.routing import websocket_routes

websocket_urlpatterns = websocket_routes(
    # Keep ids bounded: they end up in channel-layer group names (< 100 characters).
    # re_path(r"^ws/cursors/(?P<doc>[1-9][0-9]{0,17})/$", CursorConsumer.as_asgi()),
)
