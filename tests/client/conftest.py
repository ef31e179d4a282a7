"""Fixtures for the Python client's tests: real daphne, the client under test."""

import asyncio
import contextlib
import json
import shutil
import time

import pytest
import websockets

from authsocket_client import ApiClient, MemoryTokenStore, Message, Tokens
from tests.servers import DaphneServer, manage, server_env, sqlite_url

PASSWORD = "authsocket-demo"
# Reconnect at once: the tests wait for events, not for backoffs.
FAST = {"backoff_base": 0.05, "backoff_cap": 0.5}


def welcome_frame() -> dict:
    """What a scripted server says first: alice, for five more minutes."""
    return {
        "type": "welcome",
        "user": {"id": 1, "username": "alice"},
        "session": "s",
        "expires_at": int(time.time()) + 300,
        "protocol": "1.1",
    }


STORE_IN_LOBBY = """
from realtime.models import Room
from realtime.tests.messages import room_message_store
room = Room.objects.get(slug="lobby")
for n in range({count}):
    room_message_store(room=room, sender=None, data={{"stored_by": {tag!r}, "n": n}})
"""


async def store_in_lobby(env: dict[str, str], tag: str, count: int = 5) -> None:
    """Store messages in `room:lobby` from another process (the server may be down)."""
    await asyncio.to_thread(
        manage, env, "shell", "-c", STORE_IN_LOBBY.format(count=count, tag=tag)
    )


@pytest.fixture
def serve(migrated_template, tmp_path):
    """Start `authsocket.serve` (SIGTERM drains with 4503) with extra settings."""
    servers: list[DaphneServer] = []

    def start(**settings) -> DaphneServer:
        workdir = tmp_path / f"server{len(servers)}"
        workdir.mkdir()
        shutil.copyfile(migrated_template, workdir / "db.sqlite3")
        env = server_env(
            sqlite_url(workdir), **{key: str(value) for key, value in settings.items()}
        )
        server = DaphneServer(
            env, log_path=workdir / "daphne.log", module="authsocket.serve"
        )
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(serve) -> DaphneServer:
    return serve()


class ScriptedServer:
    """Welcomes each connection, answers `ping` and `unsubscribe` itself, and
    hands every other frame to the test, which answers it (or not)."""

    def __init__(self):
        self.frames: asyncio.Queue = asyncio.Queue()  # (connection, frame, time)
        self.connections: list = []

    async def __aenter__(self):
        self._server = await websockets.serve(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc_info):
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, ws):
        self.connections.append(ws)
        await ws.send(json.dumps(welcome_frame()))
        async for raw in ws:
            frame = json.loads(raw)
            if frame["type"] == "ping":
                await ws.send(json.dumps({"type": "pong", "ref": frame["ref"]}))
            elif frame["type"] == "unsubscribe":
                await self.answer(ws, frame, "unsubscribed")
            else:
                await self.frames.put((ws, frame, time.monotonic()))

    async def next(self, timeout: float = 5.0) -> tuple:
        return await asyncio.wait_for(self.frames.get(), timeout)

    async def subscribes(self, count: int) -> list[tuple]:
        got = [await self.next() for _ in range(count)]
        assert all(frame["type"] == "subscribe" for _, frame, _ in got), got
        return got

    @staticmethod
    async def answer(ws, frame: dict, kind: str = "subscribed") -> None:
        answer = {"type": kind, "stream": frame["stream"], "ref": frame["ref"]}
        if kind == "subscribed":
            answer["last_id"] = 0
        await ws.send(json.dumps(answer))

    @staticmethod
    async def refuse(ws, frame: dict, code: str) -> None:
        answer = {"type": "error", "code": code, "detail": "", "ref": frame["ref"]}
        await ws.send(json.dumps(answer))


@contextlib.asynccontextmanager
async def scripted_socket(server: ScriptedServer):
    """A live socket of alice on `server`, closed with its client at the end."""
    tokens = Tokens("a.b.c", None, time.time() + 300, 300)
    api = ApiClient(server.url, store=MemoryTokenStore(tokens))
    socket = api.socket(renew=False, **FAST)
    try:
        await socket.wait_live(5)
        yield socket
    finally:
        await socket.close()
        await api.aclose()


async def next_message(socket, timeout: float = 10) -> Message:
    """The socket's next message event (presence and others skipped)."""
    async with asyncio.timeout(timeout):
        async for event in socket:
            if isinstance(event, Message):
                return event
    raise AssertionError("the socket stopped")
