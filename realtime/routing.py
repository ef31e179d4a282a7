from channels.security.websocket import WebsocketDenier
from django.urls import path, re_path

from realtime.consumers import StreamConsumer

websocket_urlpatterns = [
    path("ws/", StreamConsumer.as_asgi()),
    # Any other path is refused cleanly instead of raising "No route found".
    re_path(r"", WebsocketDenier.as_asgi()),
]
