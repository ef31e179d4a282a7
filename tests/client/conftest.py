"""Fixtures for the Python client's tests: real daphne, the client under test."""

import shutil

import pytest

from tests.servers import DaphneServer, server_env, sqlite_url

PASSWORD = "authsocket-demo"


@pytest.fixture
def serve(migrated_template, tmp_path):
    """Start `authsocket.serve` (SIGTERM drains with 4503) with extra settings."""
    servers: list[DaphneServer] = []

    def start(**settings) -> DaphneServer:
        workdir = tmp_path / f"server{len(servers)}"
        workdir.mkdir()
        shutil.copyfile(migrated_template, workdir / "db.sqlite3")
        env = server_env(
            sqlite_url(workdir), **{key: str(value) for key, value in settings.items()}
        )
        server = DaphneServer(
            env, log_path=workdir / "daphne.log", module="authsocket.serve"
        )
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(serve) -> DaphneServer:
    return serve()
