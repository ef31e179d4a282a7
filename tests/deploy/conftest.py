"""Fixtures for the deployment tests: PostgreSQL, Redis, daphne processes, nginx.

The machine's PostgreSQL and Redis come from tests/services.py: when one is
unreachable the tests SKIP with the reason, except under CI=true, where they
FAIL. nginx and redis-server binaries follow the same rule.
"""

import secrets
import shutil
from pathlib import Path

import pytest

from tests import services
from tests.servers import manage, server_env

from .processes import NginxProcess, RedisProcess, ServerProcess

# The machine's Redis, on a database number of its own so that group names of
# other end-to-end tests (same user ids, other databases) never meet these.
REDIS_DB = 9
DEMO_PASSWORD = "deploy-" + secrets.token_urlsafe(12)
unavailable = services.unavailable


@pytest.fixture(scope="session")
def redis_url():
    return services.require_redis().rsplit("/", 1)[0] + f"/{REDIS_DB}"


@pytest.fixture(scope="session")
def nginx_available():
    if not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()):
        unavailable("nginx is not installed (apt-get install nginx-light)")


@pytest.fixture(scope="session")
def redis_server_available():
    if not shutil.which("redis-server"):
        unavailable("redis-server is not installed (apt-get install redis-server)")


@pytest.fixture(scope="session")
def deploy_database():
    """A PostgreSQL database of this test session, dropped at its end."""
    with services.postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("deploy-logs")


def production_env(database_url: str, redis_url: str | None) -> dict:
    """tests/servers.py's production-like env, behind one proxy, on `redis_url`."""
    overrides = {
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "AUTHSOCKET_TRUSTED_PROXIES": "1",
        "DEMO_PASSWORD": DEMO_PASSWORD,
        "AUTHSOCKET_SHUTDOWN_GRACE": "5",
        # Tests log in far more often than people do.
        "AUTHSOCKET_LOGIN_THROTTLE": "1000/min",
        "AUTHSOCKET_LOGIN_ADDRESS_THROTTLE": "1000/min",
        "AUTHSOCKET_TICKET_THROTTLE": "1000/min",
    }
    if redis_url:
        overrides["REDIS_URL"] = redis_url
    env = server_env(database_url, **overrides)
    return {k: v for k, v in env.items() if not k.startswith("PYTEST_")}


@pytest.fixture(scope="session")
def deploy_env(deploy_database, redis_url):
    """Production-like env over a migrated database holding the demo data."""
    env = production_env(deploy_database, redis_url)
    manage(env, "migrate", "--noinput")
    manage(env, "demo_data")
    return env


def start_servers(env: dict, log_dir: Path, *names: str) -> list[ServerProcess]:
    servers = []
    try:
        for name in names:
            servers.append(ServerProcess(name, env, log_dir).start())
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers


@pytest.fixture(scope="module")
def sqlite_env(tmp_path_factory):
    """One-process env (SQLite, in-memory layer): for tests of the entry point."""
    directory = tmp_path_factory.mktemp("sqlite")
    env = production_env(f"sqlite:///{directory / 'db.sqlite3'}", None)
    manage(env, "migrate", "--noinput")
    manage(env, "demo_data")
    return env


@pytest.fixture(scope="module")
def cluster(deploy_env, log_dir, request):
    """Two daphne processes, A and B, sharing PostgreSQL and Redis."""
    prefix = request.module.__name__.rsplit(".", 1)[-1]
    servers = start_servers(deploy_env, log_dir, f"{prefix}-a", f"{prefix}-b")
    try:
        yield tuple(servers)
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(scope="module")
def proxy(cluster, nginx_available, tmp_path_factory):
    """A real nginx on a free port with the project's config, over A and B."""
    nginx = NginxProcess(
        tmp_path_factory.mktemp("nginx"), [server.port for server in cluster]
    )
    try:
        yield nginx.start()
    finally:
        nginx.stop()


@pytest.fixture
def own_redis(redis_server_available, log_dir):
    """A redis-server this test may stop and start again on the same port."""
    server = RedisProcess(log_dir)
    try:
        yield server.start()
    finally:
        server.stop()
