"""A PostgreSQL connection already open notices a server that vanished.

`connect_timeout` bounds connecting only. A query on an open connection to a
host gone or behind a firewall now dropping its packets waited on the
system's TCP defaults: two hours before a keepalive probe, about 15 minutes
of retransmissions. The settings give libpq keepalives and a TCP user
timeout (about 25 s) unless the URL sets its own; the kernel's socket
options of a real connection show that libpq applied them.
"""

import json
import socket

import pytest

from authsocket.tests.test_database_connect_timeout import options
from tests.servers import run_manage, server_env, sqlite_url
from tests.services import POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, require_postgres

TCP_DEFAULTS = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 25000,
}


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_a_postgresql_url_gets_keepalives_and_a_tcp_user_timeout(scheme):
    found = options(f"{scheme}://app:pw@db.internal:5432/app")
    assert {name: found.get(name) for name in TCP_DEFAULTS} == TCP_DEFAULTS


def test_the_urls_own_values_win():
    found = options(
        "postgres://app:pw@db.internal/app?keepalives=0&keepalives_idle=60"
        "&tcp_user_timeout=0"
    )
    assert found["keepalives"] == 0
    assert found["keepalives_idle"] == 60
    assert found["tcp_user_timeout"] == 0
    assert found["keepalives_interval"] == 5  # not in the URL: the default


def test_libpqs_pgconnect_timeout_leaves_the_keepalives():
    found = options("postgres://app:pw@db.internal/app", PGCONNECT_TIMEOUT="9")
    assert "connect_timeout" not in found
    assert {name: found.get(name) for name in TCP_DEFAULTS} == TCP_DEFAULTS


def test_sqlite_gets_none(tmp_path):
    assert not set(TCP_DEFAULTS) & set(options(sqlite_url(tmp_path)))


SOCKET_OPTIONS = (
    "import json, os, socket\n"
    "from django.db import connection\n"
    "connection.ensure_connection()\n"
    "sock = socket.socket(fileno=os.dup(connection.connection.fileno()))\n"
    "tcp = socket.IPPROTO_TCP\n"
    "print(json.dumps({\n"
    "    'keepalives': sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),\n"
    "    'keepalives_idle': sock.getsockopt(tcp, socket.TCP_KEEPIDLE),\n"
    "    'keepalives_interval': sock.getsockopt(tcp, socket.TCP_KEEPINTVL),\n"
    "    'keepalives_count': sock.getsockopt(tcp, socket.TCP_KEEPCNT),\n"
    "    'tcp_user_timeout': sock.getsockopt(tcp, socket.TCP_USER_TIMEOUT),\n"
    "}))\n"
    "sock.close()\n"
)


@pytest.mark.services
@pytest.mark.skipif(
    not hasattr(socket, "TCP_USER_TIMEOUT"), reason="Linux TCP socket options"
)
def test_a_real_connection_carries_them_on_its_socket():
    """What the kernel was told for the connection Django opened: these
    decide how soon a vanished server is noticed."""
    require_postgres()
    url = f"postgres://{POSTGRES_USER}@{POSTGRES_HOST}:{POSTGRES_PORT}/postgres"
    env = {k: v for k, v in server_env(url).items() if not k.startswith("PG")}
    result = run_manage(env, "shell", "-c", SOCKET_OPTIONS, timeout=60)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.splitlines()[-1])
    assert found == TCP_DEFAULTS
