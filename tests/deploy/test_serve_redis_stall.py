"""A drain ends in bounded time even when Redis stops answering.

docs/deploy.md §5.1: on SIGTERM the sockets get 4503, the process waits at
most AUTHSOCKET_SHUTDOWN_GRACE for them, says its presence goodbye and exits 0.
A Redis that accepts connections but answers nothing (paused, overloaded, a
network path that drops packets) made that goodbye wait forever: the process
stayed up until systemd's SIGKILL (TimeoutStopSec=20) or compose's
(stop_grace_period: 15s), and every restart of a rolling restart took that long.
"""

import signal
import time

import pytest

from .client import close_code, connect, login, subscribe
from .conftest import DEMO_PASSWORD, start_servers

pytestmark = [pytest.mark.e2e, pytest.mark.services, pytest.mark.timeout(120)]

GRACE = 1.0
# Compose's stop_grace_period (docker-compose.yml), the shorter of the two
# deadlines after which the process is killed rather than drained.
KILLED_AFTER = 15.0


@pytest.mark.asyncio
async def test_a_drain_with_redis_not_answering_exits_before_it_is_killed(
    sqlite_env, own_redis, log_dir
):
    env = {
        **sqlite_env,
        "REDIS_URL": own_redis.url,
        "AUTHSOCKET_SHUTDOWN_GRACE": str(GRACE),
    }
    (server,) = start_servers(env, log_dir, "drain-redis-stalled")
    try:
        alice = await login(server.http, "alice", DEMO_PASSWORD)
        ws, _ = await connect(server.ws, token=alice["access"])
        # A presence stream: the goodbye has this socket's leave to send.
        assert (await subscribe(ws, "room:lobby"))["type"] == "subscribed"
        own_redis.signal(signal.SIGSTOP)  # connections stay open, nothing answers
        started = time.monotonic()
        server.signal(signal.SIGTERM)
        assert await close_code(ws, timeout=5) == 4503
        assert server.wait_exit(KILLED_AFTER) == 0
        assert time.monotonic() - started < KILLED_AFTER
        assert "Drained in" in server.output
        # Said in one line, not a traceback: a stalled Redis is no bug here.
        assert "presence goodbye on shutdown did not finish" in server.output
        assert "Traceback" not in server.output
    finally:
        own_redis.signal(signal.SIGCONT)
        server.stop(signal.SIGKILL)
