"""Fixtures for the Python client's tests: real daphne, the client under test."""

import asyncio
import shutil
import time

import pytest

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
