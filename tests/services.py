"""The machine's PostgreSQL and Redis, for tests that need them.

A test that needs a service the machine lacks SKIPS with the reason on a
laptop and FAILS under `CI=true` (CI must run it). Call `require_postgres()`
or `require_redis()` first; `postgres_database()` gives a fresh, uniquely
named database and drops it afterwards.
"""

import asyncio
import contextlib
import os
import socket
import uuid
from urllib.parse import urlparse

import pytest

POSTGRES_HOST = os.environ.get("PGHOST", "127.0.0.1")
POSTGRES_PORT = int(os.environ.get("PGPORT", 5432))
POSTGRES_USER = os.environ.get("PGUSER", "postgres")
REDIS_TEST_URL = os.environ.get(
    "AUTHSOCKET_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"
)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> None:
    """Skip, or fail under CI, because a service is missing."""
    if in_ci():
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_postgres() -> None:
    """PostgreSQL answers a login, or the test is skipped (failed in CI)."""
    if not reachable(POSTGRES_HOST, POSTGRES_PORT):
        unavailable(f"PostgreSQL is not reachable on {POSTGRES_HOST}:{POSTGRES_PORT}")
    try:
        import psycopg

        with psycopg.connect(_admin_dsn(), connect_timeout=3):
            pass
    except Exception as exc:  # driver missing, auth refused, server starting…
        unavailable(f"PostgreSQL refused a connection ({type(exc).__name__}: {exc})")


def require_redis() -> str:
    """Redis answers PING, or the test is skipped (failed in CI); returns its URL."""
    parsed = urlparse(REDIS_TEST_URL)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 6379
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            if not sock.recv(64).startswith(b"+PONG"):
                raise OSError("no PONG")
    except OSError as exc:
        unavailable(f"Redis is not reachable at {host}:{port} ({exc})")
    return REDIS_TEST_URL


def _admin_dsn() -> str:
    return (
        f"host={POSTGRES_HOST} port={POSTGRES_PORT} user={POSTGRES_USER} "
        "dbname=postgres"
    )


@contextlib.contextmanager
def postgres_database(prefix: str = "authsocket_test"):
    """A fresh database on the machine's PostgreSQL; yields its URL, drops it after."""
    require_postgres()
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_url(name)
    finally:
        with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def postgres_url(name: str) -> str:
    return f"postgres://{POSTGRES_USER}@{POSTGRES_HOST}:{POSTGRES_PORT}/{name}"


@contextlib.asynccontextmanager
async def daphne_on_postgres(log_dir, count: int = 1):
    """`count` daphne processes sharing a fresh PostgreSQL database, migrated
    and with the demo users; yields the started servers, stops them after."""
    from tests.servers import DaphneServer, manage, server_env

    with postgres_database() as database_url:
        env = server_env(database_url)
        await asyncio.to_thread(manage, env, "migrate", "--noinput")
        await asyncio.to_thread(manage, env, "demo_data")
        servers = [
            DaphneServer(env, log_path=log_dir / f"daphne-{i}.log")
            for i in range(count)
        ]
        try:
            for server in servers:
                await asyncio.to_thread(server.start)
            yield servers
        finally:
            for server in servers:
                server.stop()
