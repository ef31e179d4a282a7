"""deploy/rolling-restart.sh: one unit at a time, each only once /readyz says so.

systemctl is replaced by a stub on PATH that records its arguments; the
"process" on the port is a socket of the test, so the script's waiting is
what is tested, bounded, without systemd.
"""

import os
import shutil
import socket
import subprocess

import pytest

from tests.http import QuietHandler, http_origin

from .processes import ROOT

SCRIPT = ROOT / "deploy" / "rolling-restart.sh"


@pytest.fixture
def stub_path(tmp_path):
    """A PATH whose systemctl only writes its arguments to `systemctl.log`."""
    if not shutil.which("curl"):
        pytest.skip("the script probes /readyz with curl")
    stub = tmp_path / "systemctl"
    stub.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "systemctl.log"}\n')
    stub.chmod(0o755)
    return f"{tmp_path}:{os.environ['PATH']}"


def run(port: int, path: str, ready_timeout: str, timeout: float):
    return subprocess.run(
        ["sh", str(SCRIPT), str(port)],
        env={**os.environ, "PATH": path, "READY_TIMEOUT": ready_timeout},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Ready(QuietHandler):
    def do_GET(self):
        self.answer(200 if self.path == "/readyz" else 404)


def test_each_unit_is_restarted_then_waited_for_until_ready(stub_path, tmp_path):
    with http_origin(Ready) as origin:
        port = int(origin.rsplit(":", 1)[1])
        result = run(port, stub_path, "10", timeout=30)
    assert result.returncode == 0, result.stderr
    assert f"authsocket@{port} ready" in result.stdout
    assert (tmp_path / "systemctl.log").read_text() == f"restart authsocket@{port}\n"


def test_a_process_that_accepts_but_never_answers_stops_the_roll_in_time(stub_path):
    """A stuck process (its loop blocked, the kernel still accepting) made
    each curl wait forever: the roll hung instead of stopping with its message."""
    with socket.socket() as stuck:
        stuck.bind(("127.0.0.1", 0))
        stuck.listen(8)  # never accepted: the request is never answered
        port = stuck.getsockname()[1]
        result = run(port, stub_path, "2", timeout=30)
    assert result.returncode == 1
    assert f"authsocket@{port} not ready after 2 s; stopping here" in result.stderr
