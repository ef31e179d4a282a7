"""A handshake daphne gave up on is not counted as accepted (docs/metrics.md).

daphne refuses a handshake the application has not answered within
`--websocket_connect_timeout` (autobahn drops it at that deadline, daphne's
own check answers 403 at its next round). The application is not told until
its connect handler returns: when it accepts afterwards, daphne drops the
accept and the welcome, the client is long gone, and yet
`authsocket_handshakes_total` counted the handshake `accepted` and the
open-sockets gauge counted a socket. It is refused `abandoned` now. Served by
plain daphne with a one-second timeout and a consumer that accepts only when
the test releases it (tests/apps/slowaccept).
"""

import socket
import urllib.request

import pytest

from tests.http import handshake_request, login, sample, scrape
from tests.servers import DaphneServer
from tests.wsclient import DEMO_PASSWORD

pytestmark = [pytest.mark.e2e]

APP = "tests.apps.slowaccept.asgi:application"
METRICS_TOKEN = "e2e-handshake-timeout-0123456789abcdef"
TIMEOUT = 10
HANDSHAKES = 'authsocket_handshakes_total{{outcome="{}",reason="{}",transport="query"}}'
ACCEPTED = HANDSHAKES.format("accepted", "none")
ABANDONED = HANDSHAKES.format("refused", "abandoned")
OPEN = "authsocket_open_sockets"


@pytest.fixture
def slow_server(e2e_env, tmp_path):
    env = {**e2e_env, "AUTHSOCKET_METRICS_TOKEN": METRICS_TOKEN}
    server = DaphneServer(
        env,
        log_path=tmp_path / "daphne.log",
        app=APP,
        options=("--websocket_connect_timeout", "1"),
    ).start()
    yield server
    server.stop()


def figures(server) -> str:
    status, text = scrape(server, f"Bearer {METRICS_TOKEN}")
    assert status == 200
    return text


def handshake_answer(port: int, path: str) -> bytes:
    """Everything the server answers a WebSocket handshake, until it gives up."""
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(handshake_request(port, path))
        try:
            while chunk := sock.recv(4096):  # until daphne closes: bounded
                answer += chunk
        except ConnectionResetError:
            pass
    return answer


def test_a_handshake_daphne_gave_up_on_is_not_counted_accepted(slow_server):
    token = login(slow_server.http, "alice", DEMO_PASSWORD)["access"]
    before = figures(slow_server)
    answer = handshake_answer(slow_server.port, f"/ws/slow/?token={token}")
    assert b" 101 " not in answer.split(b"\r\n", 1)[0], answer
    # Now the application accepts, and welcomes a client that is gone.
    release = f"{slow_server.http}/slow-accept/release"
    with urllib.request.urlopen(release, timeout=TIMEOUT * 4) as response:
        assert response.status == 204
    after = figures(slow_server)
    assert sample(after, ACCEPTED) == sample(before, ACCEPTED)
    assert sample(after, ABANDONED) == sample(before, ABANDONED) + 1
    assert sample(after, OPEN) == sample(before, OPEN)
