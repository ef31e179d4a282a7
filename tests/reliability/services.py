"""External services for fault tests: a private Redis, PostgreSQL, a TCP cut-out.

Tests that need a service the machine lacks SKIP with the reason, and FAIL
when `CI=true` (CI must run them); the shared rules are in tests/services.py.
"""

import contextlib
import os
import shutil
import socket
import struct
import threading
import time
import uuid

from tests.servers import DaphneServer, RedisProcess, free_port, manage, server_env
from tests.services import reachable, unavailable

LINGER_RESET = struct.pack("ii", 1, 0)  # close() then sends RST, not FIN
POSTGRES_HOST, POSTGRES_PORT = "127.0.0.1", int(os.environ.get("PGPORT", 5432))


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05):
    """Poll `predicate` (for state in another process: nothing to await)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class RedisServer(RedisProcess):
    """tests/servers.py's throw-away redis-server, spoken to with inline commands."""

    def __init__(self) -> None:
        if shutil.which("redis-server") is None:
            unavailable("redis-server is not installed")
        super().__init__()

    def ping(self) -> bool:
        return self.command("PING") == "+PONG"

    def command(self, *words: str) -> str:
        """One inline command; the first reply line ("" when unreachable)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall((" ".join(words) + "\r\n").encode())
                return s.makefile("rb").readline().decode().strip()
        except OSError:
            return ""


class TcpCutout:
    """A TCP forwarder to a service that can be cut (outage) and restored.

    Cutting closes the listening socket (new connections: refused) and resets
    every forwarded connection, as a crashed or unreachable server would.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._pairs: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> "TcpCutout":
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
            self._listener.close()
            self._listener = None
        with self._lock:
            pairs, self._pairs = self._pairs, set()
        for end in pairs:
            with contextlib.suppress(OSError):
                end.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
                # shutdown() wakes the pipe thread blocked in recv(); a bare
                # close() from this thread would not release the socket.
                end.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                end.close()

    def restore(self) -> None:
        self.start()

    def stop(self) -> None:
        self.cut()


@contextlib.contextmanager
def postgres_database():
    """A fresh, uniquely named database on the machine's PostgreSQL; dropped after."""
    if not reachable(POSTGRES_HOST, POSTGRES_PORT):
        unavailable(f"PostgreSQL is not reachable on {POSTGRES_HOST}:{POSTGRES_PORT}")
    import psycopg

    name = f"authsocket_rel_{uuid.uuid4().hex[:12]}"
    admin = f"host={POSTGRES_HOST} port={POSTGRES_PORT} user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def postgres_url(name: str, port: int = POSTGRES_PORT) -> str:
    return f"postgres://postgres@{POSTGRES_HOST}:{port}/{name}"


@contextlib.contextmanager
def daphne_on_cut_postgres(log_path, module: str | None = None, **env: str):
    """(server, cutout): a server, with the demo's users, on a private
    PostgreSQL database that it reaches through a `TcpCutout`."""
    with postgres_database() as name:
        server_settings = server_env(postgres_url(name), **env)
        manage(server_settings, "migrate", "--noinput")
        manage(server_settings, "demo_data")
        cutout = TcpCutout(POSTGRES_HOST, POSTGRES_PORT).start()
        options = {} if module is None else {"module": module}
        server = DaphneServer(
            {**server_settings, "DATABASE_URL": postgres_url(name, cutout.port)},
            log_path=log_path,
            **options,
        ).start()
        try:
            yield server, cutout
        finally:
            server.stop()
            cutout.stop()
