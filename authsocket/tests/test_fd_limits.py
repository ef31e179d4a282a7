"""authsocket.fd_limits: the open-file limit raised, logged, warned about."""

import logging
import resource
import subprocess
import sys

import pytest

from authsocket import fd_limits
from authsocket.fd_limits import NofileLimit, nofile_raise, nofile_report
from tests.services import unavailable


@pytest.fixture
def lowered_soft_limit():
    """The soft limit at 256 for the test, the original one restored after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 256:
        unavailable(f"the hard open-file limit {hard} leaves nothing to raise")
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        yield hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_soft_limit_is_raised_to_the_hard_limit(lowered_soft_limit):
    limit = nofile_raise()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert limit.before == 256
    assert soft == limit.soft == fd_limits._ceiling(hard)
    assert limit.soft > 256


def test_the_limit_in_effect_is_logged_once_without_a_warning_when_enough(caplog):
    caplog.set_level(logging.INFO, logger="authsocket.serve")

    nofile_report(NofileLimit(soft=65536, hard=65536, before=1024), expected=10_000)

    assert [r.levelname for r in caplog.records] == ["INFO"]
    assert "open-file limit 65536" in caplog.text
    assert "1024 at start" in caplog.text


def test_a_limit_too_low_for_the_expected_sockets_is_warned_with_the_fix(caplog):
    caplog.set_level(logging.INFO, logger="authsocket.serve")

    nofile_report(NofileLimit(soft=1024, hard=1024, before=1024), expected=10_000)

    warning = next(r for r in caplog.records if r.levelname == "WARNING")
    message = warning.getMessage()
    assert "about 960 WebSockets" in message
    assert "AUTHSOCKET_EXPECTED_SOCKETS=10000" in message
    assert "LimitNOFILE=" in message
    assert "docs/deploy.md" in message


def test_a_process_whose_hard_limit_is_low_keeps_it_and_warns():
    """In a child whose hard limit is 512: nothing to raise, a warning at start."""
    code = (
        "import logging, resource;"
        "logging.basicConfig(level=logging.INFO);"
        "from authsocket.fd_limits import nofile_prepare;"
        "limit = nofile_prepare(expected=10000);"
        "print('soft', resource.getrlimit(resource.RLIMIT_NOFILE)[0], limit.soft)"
    )

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (512, 512))

    done = subprocess.run(
        [sys.executable, "-c", code],
        preexec_fn=low_limit,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )

    assert done.stdout.split() == ["soft", "512", "512"]
    assert "WARNING:authsocket.serve:open-file limit 512" in done.stderr
