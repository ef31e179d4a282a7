"""Fixtures for cross-app end-to-end tests: real daphne processes."""

import shutil

import pytest

from tests.servers import DaphneServer, manage, server_env, sqlite_url


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory):
    """Migrate and load demo data once; each test copies the file (fast)."""
    directory = tmp_path_factory.mktemp("template-db")
    env = server_env(sqlite_url(directory))
    manage(env, "migrate", "--noinput")
    manage(env, "demo_data")
    return directory / "db.sqlite3"


@pytest.fixture
def e2e_env(migrated_template, tmp_path):
    """A private SQLite database with demo data, and the env to serve it."""
    shutil.copy(migrated_template, tmp_path / "db.sqlite3")
    return server_env(sqlite_url(tmp_path))


@pytest.fixture
def daphne_server(e2e_env, tmp_path):
    server = DaphneServer(e2e_env, log_path=tmp_path / "daphne.log").start()
    yield server
    server.stop()
