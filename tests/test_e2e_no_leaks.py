"""A real server is back where it started after hundreds of sockets ended badly.

What only the transport sees (a TCP connection dropped without a close
frame, a text message that is not UTF-8, a message over the transport's
limit, a handshake whose client left at once) ends a socket before or
beside the application; each ends here many times, with the paths the
application closes itself, on one `authsocket.serve` process. Then the
open-sockets gauge is back at 0, the user can open as many sockets as the
per-user limit allows (a socket still counted would take a place), and
presence lists nobody on the stream every socket was on. The process's own
structures are compared one by one in realtime/tests/test_no_leaks.py.
"""

import asyncio
import contextlib
import json
import socket
import time

import pytest
import websockets

from tests.http import handshake_request, login, sample, scrape
from tests.servers import demo_server
from tests.wsclient import DEMO_PASSWORD, OPEN_TIMEOUT, TIMEOUT, close_code

pytestmark = [pytest.mark.e2e]

ROUNDS = 30  # each round ends a socket by every path once
LIMIT = 1000  # AUTHSOCKET_MAX_MESSAGE_BYTES
PER_USER = 3  # AUTHSOCKET_MAX_CONNECTIONS_PER_USER
METRICS_TOKEN = "e2e-no-leaks-metrics-0123456789"
LOBBY = "room:lobby"


@pytest.fixture(scope="module")
def server(migrated_template, tmp_path_factory):
    with demo_server(
        migrated_template,
        tmp_path_factory.mktemp("no-leaks"),
        AUTHSOCKET_METRICS_TOKEN=METRICS_TOKEN,
        AUTHSOCKET_MAX_MESSAGE_BYTES=str(LIMIT),
        AUTHSOCKET_MAX_CONNECTIONS_PER_USER=str(PER_USER),
        AUTHSOCKET_FRAME_RATE="5/s",
    ) as server:
        yield server


async def opened(server, token: str):
    """A welcomed socket on the lobby with presence: it counts everywhere."""
    ws = await websockets.connect(
        f"{server.ws}?token={token}", open_timeout=OPEN_TIMEOUT, max_queue=None
    )
    assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["type"] == "welcome"
    await ws.send(json.dumps({"type": "subscribe", "stream": LOBBY, "presence": True}))
    for expected in ("subscribed", "presence"):
        frame = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        assert frame["type"] == expected, frame
    return ws


async def closed_by_the_server(ws, send, code: int) -> None:
    with contextlib.suppress(websockets.ConnectionClosed):
        await send(ws)
    assert await close_code(ws, TIMEOUT) == code


async def closed_normally(server, token):
    ws = await opened(server, token)
    await ws.send(json.dumps({"type": "subscribe", "stream": "room:team"}))
    await ws.send(json.dumps({"type": "unsubscribe", "stream": "room:team"}))
    await ws.close()


async def dropped(server, token):
    """No close frame: the network went, with a subscribe in flight."""
    ws = await opened(server, token)
    frame = {"type": "subscribe", "stream": "room:team", "presence": True}
    await ws.send(json.dumps(frame))
    ws.transport.abort()
    await ws.wait_closed()


async def not_utf8(server, token):
    ws = await opened(server, token)
    await closed_by_the_server(
        ws, lambda ws: ws.send(b'{"type": "ping", "ref": "\xff"}', text=True), 1007
    )


async def over_the_limit(server, token):
    for size in (LIMIT + 1, 4 * LIMIT):  # the consumer's check, the transport's
        ws = await opened(server, token)
        await closed_by_the_server(ws, lambda ws, n=size: ws.send("x" * n), 4413)


async def flooding(server, token):
    async def pings(ws):
        for ref in range(40):
            await ws.send(json.dumps({"type": "ping", "ref": ref}))

    ws = await opened(server, token)
    await closed_by_the_server(ws, pings, 4429)


async def binary(server, token):
    ws = await opened(server, token)
    await closed_by_the_server(ws, lambda ws: ws.send(b"\x00"), 4415)


async def left_during_the_handshake(server, token):
    """The request is sent and the connection closed before any answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as raw:
        raw.sendall(handshake_request(server.port, f"/ws/?token={token}"))


async def refused(server, token):
    with pytest.raises(websockets.InvalidStatus):
        await websockets.connect(f"{server.ws}?token=not-a-jwt", open_timeout=TIMEOUT)


PATHS = [
    left_during_the_handshake,  # first: a round of full sockets follows it
    closed_normally,
    dropped,
    not_utf8,
    over_the_limit,
    flooding,
    binary,
    refused,
]


def open_sockets(server) -> float:
    status, text = scrape(server, f"Bearer {METRICS_TOKEN}")
    assert status == 200
    return sample(text, "authsocket_open_sockets ")


def settled(server) -> None:
    """The server has released every socket: its gauge says none is open.

    Another process: nothing to await but its figures.
    """
    deadline = time.monotonic() + TIMEOUT
    while open_sockets(server) != 0:
        assert time.monotonic() < deadline, "sockets still counted open"
        time.sleep(0.05)


async def test_hundreds_of_sockets_ended_every_way_leave_nothing_behind(server):
    token = login(server.http, "alice", DEMO_PASSWORD)["access"]
    for _ in range(ROUNDS):
        for path in PATHS:
            await path(server, token)
    settled(server)
    # Every place of the per-user limit is free, and presence lists nobody.
    kept = [await opened(server, token) for _ in range(PER_USER)]
    await kept[0].send(json.dumps({"type": "presence", "stream": LOBBY, "ref": 1}))
    while (frame := json.loads(await asyncio.wait_for(kept[0].recv(), TIMEOUT)))[
        "type"
    ] != "presence" or frame.get("ref") != 1:
        pass  # the joins of the other kept sockets
    assert [(u["username"], u["connections"]) for u in frame["users"]] == [
        ("alice", PER_USER)
    ]
    for ws in kept:
        await ws.close()
    settled(server)
