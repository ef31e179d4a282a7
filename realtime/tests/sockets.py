"""Helpers for WebSocket tests on `channels.testing` communicators.

Every wait is bounded; a socket that does not do what is expected in time
fails the test instead of hanging it.
"""

import time

from channels.db import database_sync_to_async

from realtime.protocol import ServerFrame


async def db(function, *args, **kwargs):
    """Run ORM code from an async test the way the consumer does."""
    return await database_sync_to_async(function)(*args, **kwargs)


async def refused(communicator, timeout: float = 5) -> bool:
    """True when the socket was closed before accept (daphne then answers 403)."""
    connected, _ = await communicator.connect(timeout=timeout)
    if connected:
        await communicator.disconnect()
    return not connected


async def welcomed(communicator, timeout: float = 5) -> dict:
    """Connect, expect acceptance and the welcome frame; returns the frame."""
    connected, _ = await communicator.connect(timeout=timeout)
    assert connected, "the handshake was refused"
    frame = await communicator.receive_json_from(timeout=timeout)
    assert frame["type"] == ServerFrame.WELCOME, frame
    return frame


async def close_code(communicator, timeout: float) -> tuple[int, float]:
    """Wait for the server to close; returns `(code, wall time it arrived)`.

    Frames that arrive before the close are skipped.
    """
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"not closed within {timeout} s"
        message = await communicator.receive_output(timeout=remaining)
        if message["type"] == "websocket.close":
            return message.get("code", 1000), time.time()


async def still_open(communicator, timeout: float = 2) -> bool:
    """A ping answered with a pong: the socket is alive and unclosed."""
    await communicator.send_json_to({"type": "ping", "ref": "alive?"})
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, "no pong in time"
        message = await communicator.receive_output(timeout=remaining)
        if message["type"] == "websocket.close":
            return False
        if '"pong"' in message.get("text", "") and '"alive?"' in message["text"]:
            return True
