"""authsocket's ASGI app plus one frame type that raises: a consumer bug on demand.

Served by daphne in tests/reliability/test_faults.py to show that an exception
in one socket's handler closes that socket (1011) and nothing else.
"""

from authsocket.asgi import application
from realtime.consumers import StreamConsumer

CRASH_FRAME = "test.crash"


async def on_crash(consumer, frame: dict) -> None:
    raise RuntimeError("injected consumer bug")


StreamConsumer.handlers = {**StreamConsumer.handlers, CRASH_FRAME: on_crash}

__all__ = ["application"]
