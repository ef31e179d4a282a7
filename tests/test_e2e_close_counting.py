"""A close the transport never sends is not counted, under both servers.

After the server's close (here 4415, for a binary frame) the connection is
closing: autobahn sends no second close frame. A message over the size limit
arriving then made the transport's 4413 patch count a 4413 that never went
out, beside the 4415 that did. The client below speaks raw frames, so that
it can leave the server's close unanswered, as a slow or hostile client may.
"""

import json
import os
import socket
import struct

import pytest

from tests.http import handshake_request, login, sample, scrape
from tests.servers import demo_server
from tests.wsclient import DEMO_PASSWORD

pytestmark = [pytest.mark.e2e]

TIMEOUT = 10
METRICS_TOKEN = "e2e-close-counting-metrics-0123456789"
BINARY, CLOSE = 0x2, 0x8


@pytest.fixture(scope="module", params=["daphne", "authsocket.serve"])
def server(request, migrated_template, tmp_path_factory):
    with demo_server(
        migrated_template,
        tmp_path_factory.mktemp("close-counting"),
        module=request.param,
        AUTHSOCKET_METRICS_TOKEN=METRICS_TOKEN,
    ) as server:
        yield server


def client_frame(opcode: int, payload: bytes, announced: int | None = None) -> bytes:
    """A masked frame; `announced` claims another length than `payload`'s."""
    length = len(payload) if announced is None else announced
    if length < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class RawSocket:
    """A WebSocket client that answers nothing unless told to."""

    def __init__(self, server, token: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.port), TIMEOUT)
        self.sock.sendall(handshake_request(server.port, f"/ws/?token={token}"))
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        status, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        assert b" 101 " in status.split(b"\r\n")[0], status

    def _recv(self) -> bytes:
        return self.sock.recv(65536)  # bounded by the socket's timeout

    def frame(self) -> tuple[int, bytes] | None:
        """The next server frame (unmasked, short), or None at the end."""
        while True:
            if len(self.buffer) >= 2:
                opcode, length, start = self.buffer[0] & 0x0F, self.buffer[1], 2
                if length == 126:
                    (length,), start = struct.unpack("!H", self.buffer[2:4]), 4
                if len(self.buffer) >= start + length:
                    payload = self.buffer[start : start + length]
                    self.buffer = self.buffer[start + length :]
                    return opcode, payload
            chunk = self._recv()
            if not chunk:
                return None
            self.buffer += chunk

    def close_code(self) -> int:
        """The code of the server's close frame, frames before it skipped."""
        while (frame := self.frame()) is not None:
            if frame[0] == CLOSE:
                return struct.unpack("!H", frame[1][:2])[0]
        raise AssertionError("the connection ended without a close frame")

    def ended(self) -> bool:
        """Whether the server ended the connection, every frame after read."""
        while self.frame() is not None:
            pass
        return True


def counted(server, code: int) -> float:
    status, text = scrape(server, f"Bearer {METRICS_TOKEN}")
    assert status == 200
    return sample(text, f'authsocket_close_codes_total{{code="{code}"}}')


def test_a_message_too_big_after_the_servers_close_counts_no_4413(server):
    token = login(server.http, "alice", DEMO_PASSWORD)["access"]
    before = {code: counted(server, code) for code in (4413, 4415)}
    client = RawSocket(server, token)
    assert json.loads(client.frame()[1])["type"] == "welcome"
    client.sock.sendall(client_frame(BINARY, b"\x00"))
    assert client.close_code() == 4415  # left unanswered: the server is closing
    client.sock.sendall(client_frame(BINARY, b"", announced=64 * 1024 * 1024))
    assert client.ended()
    client.sock.close()
    after = {code: counted(server, code) for code in (4413, 4415)}
    assert (after[4415] - before[4415], after[4413] - before[4413]) == (1, 0)
