"""GET /metrics on a real daphne process whose database is unreachable.

The figures must stay readable exactly when an operator needs them most, and
a handshake refused because of the database must show up in them.
"""

import asyncio
import uuid

import pytest
import websockets

from accounts.tokens import encode_access
from tests.http import sample, scrape
from tests.servers import DaphneServer, running, server_env

pytestmark = [pytest.mark.e2e]

TOKEN = "e2e-metrics-token-0123456789abcdef"
UNREACHABLE_DATABASE = "postgres://authsocket:x@127.0.0.1:9/authsocket"


async def refused_handshake(server, access: str) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        await asyncio.wait_for(
            websockets.connect(f"{server.ws}?token={access}", open_timeout=10), 15
        )
    assert refused.value.response.status_code == 403  # refused, not a crash


def test_metrics_answer_while_the_database_is_down(settings, tmp_path):
    env = server_env(UNREACHABLE_DATABASE, AUTHSOCKET_METRICS_TOKEN=TOKEN)
    settings.AUTHSOCKET_JWT_SECRET = env["AUTHSOCKET_JWT_SECRET"]
    access, _ = encode_access(user_id=1, sid=uuid.uuid4().hex)
    server = DaphneServer(env, log_path=tmp_path / "daphne.log")
    with running(server):
        assert scrape(server, None)[0] == 401
        assert scrape(server, "Bearer not-the-token-0123456789")[0] == 401
        status, before = scrape(server, f"Bearer {TOKEN}")
        assert status == 200
        assert "authsocket_open_sockets 0.0" in before

        asyncio.run(refused_handshake(server, access))

        status, after = scrape(server, f"Bearer {TOKEN}")
        assert status == 200
        refused = (
            'authsocket_handshakes_total{outcome="refused",'
            'reason="database_unavailable",transport="query"}'
        )
        assert sample(after, refused) == sample(before, refused) + 1
        errors = 'authsocket_database_errors_total{operation="handshake"}'
        assert sample(after, errors) >= 1
        assert access not in after


def test_no_token_configured_is_404(tmp_path):
    env = server_env(UNREACHABLE_DATABASE)
    with running(DaphneServer(env)) as server:
        assert scrape(server, f"Bearer {TOKEN}")[0] == 404
