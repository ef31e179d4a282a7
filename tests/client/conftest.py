"""Fixtures for the Python client's tests: real daphne, the client under test."""

import asyncio
import contextlib
import json
import shutil
import time

import httpx
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


class LocalTcpServer:
    """A TCP server on a free port of 127.0.0.1 while the `async with` lasts;
    a subclass serves each connection in `_serve(reader, writer)`."""

    async def __aenter__(self):
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc_info):
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader, writer):
        raise NotImplementedError


class HttpRelay(LocalTcpServer):
    """An HTTP origin in front of a real server: forwards each request (one
    per connection) and notes when it came, per path. A path can be held:
    its requests wait, unforwarded, until the test releases it. A path can
    be answered by the relay instead, as a proxy before the server would
    (a 429 of its own), for as many requests as answers were given.

    The server is the real one; the relay only decides when it is asked.
    """

    def __init__(self, upstream: str):
        self._upstream = httpx.AsyncClient(base_url=upstream, timeout=10)
        self._arrivals: dict[str, asyncio.Queue] = {}
        self._gates: dict[str, asyncio.Event] = {}
        self._answers: dict[str, list[httpx.Response]] = {}
        self._serving: set[asyncio.Task] = set()

    async def __aexit__(self, *exc_info):
        self._server.close()
        for task in self._serving:
            task.cancel()  # held or forwarding: the test is over
        await asyncio.gather(*self._serving, return_exceptions=True)
        await super().__aexit__(*exc_info)
        await self._upstream.aclose()

    def hold(self, path: str) -> None:
        self._gates[path] = asyncio.Event()

    def release(self, path: str) -> float:
        """Forward the held requests of `path`, and the later ones; answers when."""
        self._gates[path].set()
        return time.monotonic()

    def answer_once(self, path: str, response: httpx.Response) -> None:
        """Answer the next request of `path` (not yet answered so) with
        `response`, without asking the server; later ones are forwarded."""
        self._answers.setdefault(path, []).append(response)

    async def arrival(self, path: str, timeout: float = 10.0) -> float:
        """When the next request of `path` came (time.monotonic())."""
        queue = self._arrivals.setdefault(path, asyncio.Queue())
        return await asyncio.wait_for(queue.get(), timeout)

    async def _serve(self, reader, writer):
        task = asyncio.current_task()
        self._serving.add(task)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *lines = head.split("\r\n")
            method, target, _ = request_line.split(" ", 2)
            fields = [line.split(":", 1) for line in lines if line]
            headers = {name.strip().lower(): value.strip() for name, value in fields}
            body = await reader.readexactly(int(headers.get("content-length", 0)))
            path = target.split("?", 1)[0]
            self._arrivals.setdefault(path, asyncio.Queue()).put_nowait(
                time.monotonic()
            )
            gate = self._gates.get(path)
            if gate is not None:
                await gate.wait()
            for hop in ("host", "connection", "content-length", "accept-encoding"):
                headers.pop(hop, None)
            canned = self._answers.get(path)
            if canned:
                answer = canned.pop(0)
            else:
                answer = await self._upstream.request(
                    method, target, headers=headers, content=body
                )
            writer.write(_response_bytes(answer))
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, httpx.HTTPError):
            pass  # the caller went away, or the server did: the caller sees it
        finally:
            writer.close()
            self._serving.discard(task)


def _response_bytes(answer: httpx.Response) -> bytes:
    """`answer` as HTTP/1.1 bytes with its own length, closing the connection."""
    skipped = {"content-length", "connection", "transfer-encoding", "content-encoding"}
    lines = [f"HTTP/1.1 {answer.status_code} {answer.reason_phrase}"]
    lines += [f"{k}: {v}" for k, v in answer.headers.items() if k not in skipped]
    lines += [f"Content-Length: {len(answer.content)}", "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + answer.content


class SocketRelay(LocalTcpServer):
    """A TCP relay in front of a real server's WebSocket: the bytes pass
    unchanged both ways, so the client and the server speak as they would
    directly. The relay only decides when: `shut()` keeps new connections
    waiting at the door until `open()`; on a connection whose handshake
    passes after `hold_sent()`, what the client sends next waits until
    `release_sent()`; `drop()` cuts the connections open now."""

    def __init__(self, upstream_port: int):
        self._upstream_port = upstream_port
        self._door = asyncio.Event()
        self._door.set()
        self._sent_gate: asyncio.Event | None = None
        self._arrivals: asyncio.Queue = asyncio.Queue()
        self._writers: set[asyncio.StreamWriter] = set()
        self._serving: set[asyncio.Task] = set()

    @property
    def ws(self) -> str:
        return self.url.replace("http://", "ws://", 1) + "/ws/"

    async def __aexit__(self, *exc_info):
        self._server.close()
        # Let every connection run to its end, none left waiting on a gate.
        self.release_sent()
        self.open()
        self.drop()
        if self._serving:
            await asyncio.wait(set(self._serving), timeout=5)
        for task in self._serving:
            task.cancel()
        await asyncio.gather(*self._serving, return_exceptions=True)
        await super().__aexit__(*exc_info)

    def shut(self) -> None:
        self._door.clear()

    def open(self) -> None:
        self._door.set()

    def hold_sent(self) -> None:
        self._sent_gate = asyncio.Event()

    def release_sent(self) -> None:
        if self._sent_gate is not None:
            self._sent_gate.set()
        self._sent_gate = None

    def drop(self) -> None:
        for writer in list(self._writers):
            writer.close()

    async def arrival(self, timeout: float = 10.0) -> None:
        """Wait for the next connection a client opens (at the door or not)."""
        await asyncio.wait_for(self._arrivals.get(), timeout)

    async def _serve(self, reader, writer):
        task = asyncio.current_task()
        self._serving.add(task)
        self._writers.add(writer)
        upstream_writer = None
        try:
            self._arrivals.put_nowait(None)
            await self._door.wait()
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self._upstream_port
            )
            self._writers.add(upstream_writer)
            handshake = await reader.readuntil(b"\r\n\r\n")
            upstream_writer.write(handshake)
            gate = self._sent_gate  # the hold in force when this one arrived
            await asyncio.gather(
                _pipe(reader, upstream_writer, gate),
                _pipe(upstream_reader, writer, None),
            )
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # either side went away: the other sees its connection end
        finally:
            for end in (writer, upstream_writer):
                if end is not None:
                    end.close()
                    self._writers.discard(end)
            self._serving.discard(task)


async def _pipe(reader, writer, gate: asyncio.Event | None) -> None:
    """Copy bytes until the end; with a gate, none before it opens."""
    try:
        while data := await reader.read(65536):
            if gate is not None:
                await gate.wait()
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()
