"""authsocket's ASGI app whose `/ws/` has one frame type that raises: a bug on demand.

Served by daphne in tests/reliability/test_faults.py to show that an exception
in one socket's handler closes that socket (1011) and nothing else. The frame
type is declared the way a project declares its own (docs/extending.md).
"""

from channels.routing import ProtocolTypeRouter
from django.urls import path

from authsocket.asgi import application as project_application
from realtime.base_consumer import FrameSpec
from realtime.consumers import StreamConsumer
from realtime.routing import websocket_application, websocket_routes

CRASH_FRAME = "test.crash"


class CrashingStreamConsumer(StreamConsumer):
    frames = {CRASH_FRAME: FrameSpec("on_crash")}

    async def on_crash(self, frame: dict) -> None:
        raise RuntimeError("injected consumer bug")


application = ProtocolTypeRouter(
    {
        "http": project_application.application_mapping["http"],
        # Listed before websocket_routes' own `/ws/`: the first match wins.
        "websocket": websocket_application(
            [path("ws/", CrashingStreamConsumer.as_asgi()), *websocket_routes()]
        ),
    }
)
