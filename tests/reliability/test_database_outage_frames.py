"""Frames that need the database while it is down, on real servers.

docs/protocol.md §4.3 and docs/reliability.md: such a frame closes its socket
1011 (the client reconnects with backoff), the other sockets stay. The log
gets one short WARNING line for it, never a traceback, and repeats within a
few seconds are only counted: an outage meets every socket of a process, and
a traceback for each one buried everything else in the log. The failures
show in `authsocket_database_errors_total` and in the close-code counter.
Under plain daphne and under `authsocket.serve` alike.
"""

import json

import pytest

from tests.http import login, sample, scrape
from tests.reliability.services import daphne_on_cut_postgres
from tests.wsclient import close_code, open_socket, ping

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.services]

PASSWORD = "authsocket-demo"
METRICS_TOKEN = "outage-metrics-token-0123456789abcdef"
LOGGED = "database unavailable"  # realtime/base_consumer.py's line


@pytest.fixture(params=["daphne", "authsocket.serve"])
def server_and_cutout(request, tmp_path):
    """A server on a private PostgreSQL database reached through a cut-out."""
    with daphne_on_cut_postgres(
        tmp_path / "daphne.log",
        module=request.param,
        AUTHSOCKET_METRICS_TOKEN=METRICS_TOKEN,
    ) as server_and_cutout:
        yield server_and_cutout


def figure(server, line_start: str) -> float:
    status, text = scrape(server, f"Bearer {METRICS_TOKEN}")
    assert status == 200
    return sample(text, line_start)


async def test_frames_that_need_the_database_close_1011_with_one_line_and_no_traceback(
    server_and_cutout,
):
    server, cutout = server_and_cutout
    alice = login(server.http, "alice", PASSWORD)
    witness, _ = await open_socket(server, alice["access"])
    subscriber, _ = await open_socket(server, alice["access"])
    publisher, _ = await open_socket(server, alice["access"])
    closes_1011 = 'authsocket_close_codes_total{code="1011"}'
    closed_before = figure(server, closes_1011)

    cutout.cut()
    await subscriber.send(
        json.dumps({"type": "subscribe", "stream": "room:lobby", "since": 0})
    )
    assert await close_code(subscriber, 15) == 1011
    await publisher.send(
        json.dumps({"type": "publish", "stream": "room:lobby", "data": {"t": "hi"}})
    )
    assert await close_code(publisher, 15) == 1011
    assert await ping(witness, "still here")  # needs no database

    errors = 'authsocket_database_errors_total{operation="frame"}'
    assert figure(server, errors) == 2
    assert figure(server, closes_1011) == closed_before + 2
    logs = server.logs()
    assert "Traceback" not in logs
    assert "Exception inside application" not in logs
    # Two failures a moment apart: the first one logged, the second counted.
    lines = [line for line in logs.splitlines() if LOGGED in line]
    assert len(lines) == 1, lines
    assert "WARNING realtime.base_consumer" in lines[0]
    assert "1011" in lines[0] and "OperationalError" in lines[0]
    assert alice["access"] not in logs and alice["refresh"] not in logs
    await witness.close()
