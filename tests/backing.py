"""The machine's PostgreSQL and Redis for tests that need them.

Unreachable → the test is skipped with the reason, except in CI (`CI=true`),
where a missing service is a failure: CI must run every test.
"""

import os
import uuid
from contextlib import contextmanager

import pytest

POSTGRES_URL = os.environ.get(
    "AUTHSOCKET_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("AUTHSOCKET_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: required)")
    pytest.skip(reason)


def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except Exception as exc:
        unavailable(f"Redis at {REDIS_URL} unreachable: {exc}")
    return REDIS_URL


@contextmanager
def postgres_database():
    """A uniquely named, empty database; dropped afterwards. Yields its URL."""
    import psycopg

    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
    except Exception as exc:
        unavailable(f"PostgreSQL at {POSTGRES_URL} unreachable: {exc}")
    name = f"authsocket_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
