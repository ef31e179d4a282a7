"""A few bounded helpers over `websockets` for tests against a real daphne."""

import asyncio
import json

import websockets

OPEN_TIMEOUT = 10


async def open_socket(server, token: str):
    """Connect with `?token=` and return `(socket, welcome frame)`."""
    socket = await websockets.connect(
        f"{server.ws}?token={token}", open_timeout=OPEN_TIMEOUT, max_queue=None
    )
    welcome = json.loads(await asyncio.wait_for(socket.recv(), OPEN_TIMEOUT))
    assert welcome["type"] == "welcome", welcome
    return socket, welcome


async def refused_status(server, token: str) -> int | None:
    """The HTTP status of a refused handshake; None if it was accepted."""
    try:
        socket = await websockets.connect(
            f"{server.ws}?token={token}", open_timeout=OPEN_TIMEOUT
        )
    except websockets.InvalidStatus as exc:
        return exc.response.status_code
    await socket.close()
    return None


async def ping(socket, ref, timeout: float = 5) -> bool:
    """True when the socket answers a ping with its pong."""
    try:
        await socket.send(json.dumps({"type": "ping", "ref": ref}))
        while True:
            frame = json.loads(await asyncio.wait_for(socket.recv(), timeout))
            if frame == {"type": "pong", "ref": ref}:
                return True
    except (websockets.ConnectionClosed, TimeoutError):
        return False


async def close_code(socket, timeout: float = 5) -> int | None:
    """Wait (bounded) for the server to close the socket; its close code."""
    try:
        while True:
            await asyncio.wait_for(socket.recv(), timeout)
    except websockets.ConnectionClosed:
        return socket.close_code
    except TimeoutError:
        return None


def serving(server_class, app: str = "authsocket.asgi:application", *options: str):
    """A DaphneServer subclass serving another ASGI path, or with daphne options."""

    class AppServer(server_class):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, app=app, options=tuple(options), **kwargs)

    return AppServer


async def refusal(server, token: str) -> tuple[int, bytes] | None:
    """`(HTTP status, body)` of a refused handshake; None if it was accepted."""
    try:
        socket = await websockets.connect(
            f"{server.ws}?token={token}", open_timeout=OPEN_TIMEOUT
        )
    except websockets.InvalidStatus as exc:
        return exc.response.status_code, exc.response.body or b""
    await socket.close()
    return None
