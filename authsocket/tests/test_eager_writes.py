"""Bytes go to the kernel at once when nothing waits (authsocket/eager_writes.py).

On Twisted's own TCP connection over a real socket pair; the reactor is
Twisted's in-memory one, which only records what registers for writing.
"""

import socket
import subprocess
import sys

import pytest
from twisted.internet.abstract import FileDescriptor
from twisted.internet.protocol import Protocol
from twisted.internet.tcp import Connection
from twisted.internet.testing import MemoryReactor

from authsocket.eager_writes import eager
from realtime.outgoing_frames import unsent_bytes
from tests.servers import PROJECT, server_env, sqlite_url

# Twisted's buffered write of plain TCP, whether or not this process has
# already fixed `Connection.write` (importing authsocket.asgi does).
buffered_write = FileDescriptor.write
write = eager(buffered_write)


@pytest.fixture
def pair():
    """`(connection, peer)`: a Twisted connection and the socket it talks to."""
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    peer.settimeout(5)  # every wait bounded
    connection = Connection(ours, Protocol(), reactor=MemoryReactor())
    connection.connected = True
    yield connection, peer
    ours.close()
    peer.close()


def test_with_nothing_waiting_the_bytes_are_sent_at_once(pair):
    connection, peer = pair
    write(connection, b"hello")
    assert peer.recv(100) == b"hello"
    assert unsent_bytes(connection) == 0
    assert not connection.reactor.writers  # no turn of the loop needed


def test_bytes_never_overtake_those_already_waiting(pair):
    connection, peer = pair
    buffered_write(connection, b"first ")  # waits for Twisted's turn
    write(connection, b"second")
    peer.setblocking(False)
    with pytest.raises(BlockingIOError):
        peer.recv(100)
    assert unsent_bytes(connection) == len(b"first second")
    connection.doWrite()
    assert peer.recv(100) == b"first second"


def test_what_the_kernel_does_not_take_waits_in_order(pair):
    connection, peer = pair
    payload = bytes(range(256)) * 40_000  # ~10 MB: more than the socket holds
    write(connection, payload)
    waiting = unsent_bytes(connection)
    assert 0 < waiting < len(payload)
    assert connection in connection.reactor.writers  # Twisted sends the rest
    received = b""
    while len(received) < len(payload):
        received += peer.recv(1 << 20)
        connection.doWrite()
    assert received == payload


def test_a_connection_that_is_closed_or_aborted_is_left_to_twisted(pair):
    connection, peer = pair
    connection._aborting = True
    write(connection, b"late")
    peer.setblocking(False)
    with pytest.raises(BlockingIOError):
        peer.recv(100)


def test_daphne_serving_the_project_writes_at_once(tmp_path):
    """As plain daphne does: its server first, then the project's application."""
    code = (
        "import daphne.server, authsocket.asgi\n"
        "from twisted.internet.tcp import Connection\n"
        "print(getattr(Connection.write, 'authsocket_fixed', False))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=server_env(sqlite_url(tmp_path)),
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "True", result.stderr[-2000:]
