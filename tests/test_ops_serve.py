"""`python -m authsocket.serve` refuses a bad environment with one named line.

An operator starting the server (systemd, compose, a Procfile platform) reads
why it stopped in the journal: the variable and what is wrong with it, with a
non-zero exit, the way AUTHSOCKET_MAX_MESSAGE_BYTES and
AUTHSOCKET_SHUTDOWN_GRACE already were; not a traceback through daphne's CLI.
"""

import subprocess

import pytest

from authsocket import serve
from tests.servers import PROJECT, PYTHON, free_port, server_env

pytestmark = pytest.mark.timeout(120)


def test_a_bad_log_format_stops_start_up_with_the_variable_name(monkeypatch):
    monkeypatch.setenv("AUTHSOCKET_LOG_FORMAT", "xml")
    with pytest.raises(SystemExit, match="AUTHSOCKET_LOG_FORMAT must be one of"):
        serve.GracefulCommandLineInterface().configure()


@pytest.mark.parametrize(
    "variable, value, message",
    [
        ("DJANGO_SECRET_KEY", "", "DJANGO_SECRET_KEY is required"),
        ("AUTHSOCKET_EXPECTED_SOCKETS", "many", "AUTHSOCKET_EXPECTED_SOCKETS must be"),
        ("AUTHSOCKET_LOG_FORMAT", "xml", "AUTHSOCKET_LOG_FORMAT must be one of"),
    ],
    ids=["secret-key-missing", "settings-value", "log-format"],
)
def test_the_process_exits_1_with_one_line_not_a_traceback(
    tmp_path, variable, value, message
):
    env = server_env(f"sqlite:///{tmp_path / 'db.sqlite3'}", **{variable: value})
    result = subprocess.run(
        [
            PYTHON,
            "-m",
            "authsocket.serve",
            "-b",
            "127.0.0.1",
            "-p",
            str(free_port()),
            "authsocket.asgi:application",
        ],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr, result.stderr
