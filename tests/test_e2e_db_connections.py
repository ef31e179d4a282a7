"""A daphne process holds a bounded number of database connections.

Under ASGI each HTTP request's connection was left for the garbage collector
to close (authsocket/db_connections.py): a hundred API calls held some fifty
PostgreSQL connections, and the next ones were refused (500).
"""

import asyncio

import pytest

from tests.http import call, login
from tests.services import (
    POSTGRES_HOST,
    POSTGRES_PORT,
    POSTGRES_USER,
    daphne_on_postgres,
)

pytestmark = [pytest.mark.e2e, pytest.mark.services]

REQUESTS = 100
BUDGET = 6  # docs/deploy.md: about 4 per process (database thread, guard threads)


def connections_to(name: str) -> int:
    """Connections PostgreSQL has open to database `name`, from anyone."""
    import psycopg  # here: without it, daphne_on_postgres() skips the test

    dsn = f"host={POSTGRES_HOST} port={POSTGRES_PORT} user={POSTGRES_USER} dbname=postgres"
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)
        ).fetchone()[0]


async def test_api_requests_do_not_pile_up_postgresql_connections(tmp_path):
    async with daphne_on_postgres(tmp_path) as (server,):
        tokens = login(server.http, "alice", "authsocket-demo")
        for _ in range(REQUESTS):
            status, _, _ = await asyncio.to_thread(
                call, "GET", f"{server.http}/api/me", None, tokens["access"]
            )
            assert status == 200
        held = connections_to(server.env["DATABASE_URL"].rsplit("/", 1)[1])
        assert held <= BUDGET, f"{held} connections after {REQUESTS} requests"
