"""A few bounded helpers over `websockets` for tests against a real daphne."""

import asyncio
import json

import websockets

from tests.http import login

OPEN_TIMEOUT = 10
TIMEOUT = 10  # a frame that is due
QUIET = 0.5  # how long a socket that should stay silent is watched
DEMO_PASSWORD = "authsocket-demo"  # tests.servers.server_env's DEMO_PASSWORD


async def open_socket(server, token: str):
    """Connect with `?token=` and return `(socket, welcome frame)`."""
    socket = await websockets.connect(
        f"{server.ws}?token={token}", open_timeout=OPEN_TIMEOUT, max_queue=None
    )
    welcome = json.loads(await asyncio.wait_for(socket.recv(), OPEN_TIMEOUT))
    assert welcome["type"] == "welcome", welcome
    return socket, welcome


async def login_socket(server, username: str):
    """Log a demo user in and connect with `?token=`: `(socket, tokens)`."""
    tokens = login(server.http, username, DEMO_PASSWORD)
    socket, _ = await open_socket(server, tokens["access"])
    return socket, tokens


async def request(socket, frame: dict) -> dict:
    """Send a frame; the next frame received."""
    await socket.send(json.dumps(frame))
    return await receive(socket)


async def receive(socket) -> dict:
    return json.loads(await asyncio.wait_for(socket.recv(), TIMEOUT))


async def silent(socket) -> bool:
    """Nothing arrives for QUIET seconds."""
    try:
        await asyncio.wait_for(socket.recv(), QUIET)
    except TimeoutError:
        return True
    return False


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
    """Wait at most `timeout` s for the server to close the socket (frames
    before the close are skipped); its close code, None if still open."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                await socket.recv()
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
