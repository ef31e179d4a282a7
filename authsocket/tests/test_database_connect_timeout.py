"""PostgreSQL connections give up after `connect_timeout` (5 s unless the URL
or libpq's PGCONNECT_TIMEOUT says otherwise) instead of hanging a request for
as long as psycopg's own default (over two minutes) on a silent server."""

import json
import socket
import time

import pytest
from django.conf import settings

from tests.servers import run_manage, server_env, sqlite_url

SHOW_OPTIONS = (
    "import json; from django.conf import settings; "
    "print(json.dumps(settings.DATABASES['default'].get('OPTIONS', {})))"
)


def options(database_url: str, **env: str) -> dict:
    """The OPTIONS the settings build from this DATABASE_URL (nothing connects)."""
    environment = {
        k: v for k, v in server_env(database_url).items() if not k.startswith("PG")
    }
    result = run_manage({**environment, **env}, "shell", "-c", SHOW_OPTIONS)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])  # after the shell's preamble


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_a_postgresql_url_gets_a_connect_timeout(scheme):
    found = options(f"{scheme}://app:pw@db.internal:5432/app?sslmode=require")
    tcp = settings.DATABASE_TCP_OPTIONS  # test_database_keepalives.py
    assert found == {"sslmode": "require", "connect_timeout": 5, **tcp}


def test_the_urls_own_connect_timeout_wins():
    found = options("postgres://app:pw@db.internal:5432/app?connect_timeout=12")
    assert found == {"connect_timeout": 12, **settings.DATABASE_TCP_OPTIONS}


def test_libpqs_pgconnect_timeout_is_left_to_apply():
    """An explicit option would override libpq's environment variable."""
    found = options("postgres://app:pw@db.internal/app", PGCONNECT_TIMEOUT="9")
    assert "connect_timeout" not in found


def test_sqlite_gets_no_connect_timeout(tmp_path):
    assert "connect_timeout" not in options(sqlite_url(tmp_path))


CONNECT = (
    "import time; from django.db import connection\n"
    "started = time.monotonic()\n"
    "try:\n"
    "    connection.ensure_connection()\n"
    "except Exception as exc:\n"
    "    print(type(exc).__name__, round(time.monotonic() - started, 1))\n"
)


def test_a_silent_postgresql_fails_the_connection_within_the_timeout():
    """A server that takes the TCP connection and never answers (as behind a
    firewall dropping its packets, once connected): refused in about 5 s,
    where psycopg alone waits 130 s."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes handshakes; nobody reads
        port = silent.getsockname()[1]
        env = {
            k: v
            for k, v in server_env(f"postgres://app:pw@127.0.0.1:{port}/app").items()
            if not k.startswith("PG")
        }
        started = time.monotonic()
        result = run_manage(env, "shell", "-c", CONNECT, timeout=60)
    elapsed = time.monotonic() - started
    error, seconds = result.stdout.splitlines()[-1].split()
    assert error == "OperationalError", result.stdout + result.stderr
    assert 4 <= float(seconds) <= 15, result.stdout
    assert elapsed < 30
