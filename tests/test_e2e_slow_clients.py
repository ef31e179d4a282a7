"""A client that reads nothing is dropped; one that reads is not (realtime/outgoing_frames.py).

Against a real daphne, under plain ``daphne`` and ``authsocket.serve``: bob
subscribes to the lobby on a socket with a small receive buffer and stops
reading, while alice, in the same room, publishes large messages and reads
every one. Without the guard, bob's frames pile up in the server's memory
until the ping timeout, about a minute later; with it, once more than
AUTHSOCKET_MAX_SEND_BUFFER_BYTES wait for him, his socket is aborted: the
drop is logged and counted, alice sees him leave the room, loses nothing
and stays connected, and bob's client sees 1006.
"""

import asyncio
import json
import re
import socket

import pytest
import websockets

from tests.http import login, sample, scrape
from tests.servers import demo_server
from tests.wsclient import DEMO_PASSWORD, TIMEOUT, close_code, login_socket, receive

pytestmark = [pytest.mark.e2e]

LIMIT = 256 * 1024  # AUTHSOCKET_MAX_SEND_BUFFER_BYTES of the server below
METRICS_TOKEN = "e2e-slow-clients-metrics-0123456789"
MESSAGE = "x" * 60_000
# The kernel's buffers on both sides take a few MB before daphne's grows:
# far fewer than this many messages are needed, and none more is sent.
MOST_MESSAGES = 400
DROPPED = re.compile(
    r"WebSocket of 127\.0\.0\.1:\d+ dropped: (\d+) bytes of frames unread "
    rf"\(AUTHSOCKET_MAX_SEND_BUFFER_BYTES {LIMIT}\)"
)


@pytest.fixture(params=["daphne", "authsocket.serve"])
def server(request, migrated_template, tmp_path):
    with demo_server(
        migrated_template,
        tmp_path,
        module=request.param,
        AUTHSOCKET_MAX_SEND_BUFFER_BYTES=str(LIMIT),
        AUTHSOCKET_FRAME_RATE="10000/s",
        AUTHSOCKET_METRICS_TOKEN=METRICS_TOKEN,
    ) as server:
        yield server


async def not_reading_socket(server, username: str):
    """A socket of `username` subscribed to the lobby that reads no further:
    a small receive buffer, and the client stops reading after one frame."""
    token = login(server.http, username, DEMO_PASSWORD)["access"]
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", server.port))
    raw.setblocking(False)
    ws = await websockets.connect(
        f"{server.ws}?token={token}", sock=raw, open_timeout=TIMEOUT, max_queue=1
    )
    assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["type"] == "welcome"
    await ws.send(json.dumps({"type": "subscribe", "stream": "room:lobby"}))
    assert (
        json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["type"] == "subscribed"
    )
    return ws


async def publish_and_read(reader, frames: list[dict]) -> int:
    """Publish one large message; read until its own copy arrives, keeping
    every frame in `frames`. Its id."""
    await reader.send(
        json.dumps({"type": "publish", "stream": "room:lobby", "data": MESSAGE})
    )
    published = None
    while True:
        frame = await receive(reader)
        frames.append(frame)
        if frame["type"] == "published":
            published = frame["id"]
        elif frame["type"] == "message" and frame["id"] == published:
            return published


async def only_the_reader_left(server, reader, *, dropped: int) -> None:
    """The metrics count `dropped` slow sockets and one still open, the
    reader's; it closes, and the server logged no traceback."""
    status, text = scrape(server, f"Bearer {METRICS_TOKEN}")
    assert status == 200
    assert sample(text, "authsocket_slow_sockets_dropped_total") == dropped
    assert sample(text, "authsocket_open_sockets") == 1
    await reader.close()
    assert "Traceback" not in server.output


async def watching_the_lobby(server, *slow_users: str):
    """alice's socket in the lobby with presence, and the frames it read up
    to its snapshot, which lists `slow_users` too."""
    reader, _ = await login_socket(server, "alice")
    await reader.send(
        json.dumps({"type": "subscribe", "stream": "room:lobby", "presence": True})
    )
    frames = []
    while not any(f["type"] == "presence" for f in frames):
        frames.append(await receive(reader))
    listed = {u["username"] for u in frames[-1]["users"]}
    assert {"alice", *slow_users} <= listed
    return reader, frames


async def until_left(reader, frames: list[dict], *usernames: str) -> None:
    """Read on until `presence.leave` of each of `usernames`: the server has
    handled their sockets' ends (presence, the open-socket count)."""

    def left() -> set[str]:
        return {f["user"]["username"] for f in frames if f["type"] == "presence.leave"}

    async with asyncio.timeout(TIMEOUT):
        while not set(usernames) <= left():
            frames.append(await receive(reader))


async def test_a_client_that_reads_nothing_is_dropped_and_a_reader_is_not(server):
    slow = await not_reading_socket(server, "bob")
    reader, frames = await watching_the_lobby(server, "bob")

    ids = []
    while not DROPPED.search(server.output) and len(ids) < MOST_MESSAGES:
        ids.append(await publish_and_read(reader, frames))
    dropped = DROPPED.search(server.output)
    assert dropped, f"bob not dropped after {len(ids)} messages of {len(MESSAGE)} bytes"
    assert int(dropped.group(1)) <= LIMIT

    await until_left(reader, frames, "bob")
    # alice read every message she published, and her socket stays open.
    delivered = [f["id"] for f in frames if f["type"] == "message"]
    assert delivered == ids
    assert await publish_and_read(reader, frames) == ids[-1] + 1
    assert await close_code(slow, TIMEOUT) == 1006

    await only_the_reader_left(server, reader, dropped=1)


SOCKET_LIMIT, PROCESS_LIMIT = 2_000_000, 3_000_000
DROPPED_FOR_THE_PROCESS = re.compile(
    r"WebSocket of 127\.0\.0\.1:\d+ dropped: (\d+) bytes of frames unread; the most "
    r"of (\d+) held by all its sockets "
    rf"\(AUTHSOCKET_MAX_PROCESS_SEND_BUFFER_BYTES {PROCESS_LIMIT}\)"
)


@pytest.fixture
def crowded_server(migrated_template, tmp_path):
    """Two sockets at two thirds of their own limit pass the process's."""
    with demo_server(
        migrated_template,
        tmp_path,
        module="daphne",
        AUTHSOCKET_MAX_SEND_BUFFER_BYTES=str(SOCKET_LIMIT),
        AUTHSOCKET_MAX_PROCESS_SEND_BUFFER_BYTES=str(PROCESS_LIMIT),
        AUTHSOCKET_FRAME_RATE="10000/s",
        AUTHSOCKET_METRICS_TOKEN=METRICS_TOKEN,
    ) as server:
        yield server


async def test_slow_clients_together_past_the_process_limit_are_dropped(crowded_server):
    """bob and carol read nothing: each under his own limit, together over
    the process's. One of them is dropped for it, then the other; alice,
    who reads, keeps every message and her socket."""
    server = crowded_server
    slow = [await not_reading_socket(server, name) for name in ("bob", "carol")]
    reader, frames = await watching_the_lobby(server, "bob", "carol")

    def drops() -> int:
        return len(re.findall(r"dropped: \d+ bytes of frames unread", server.output))

    ids = []
    while drops() < 2 and len(ids) < MOST_MESSAGES:
        ids.append(await publish_and_read(reader, frames))
    assert drops() == 2, f"{drops()} dropped after {len(ids)} messages"
    first = DROPPED_FOR_THE_PROCESS.search(server.output)
    assert first, server.output[-2000:]
    waiting, held = map(int, first.groups())
    assert waiting < SOCKET_LIMIT < PROCESS_LIMIT < held
    for ws in slow:
        assert await close_code(ws, TIMEOUT) == 1006
    await until_left(reader, frames, "bob", "carol")
    assert [f["id"] for f in frames if f["type"] == "message"] == ids
    await only_the_reader_left(server, reader, dropped=2)
