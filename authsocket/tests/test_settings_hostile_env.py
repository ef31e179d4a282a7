"""Environment values that parse but cannot work are refused at start-up.

Each of these used to pass start-up and fail later: every login a 500 (a
rate written `10 / min`, a huge token lifetime), every handshake from some
origins a 500 (an allowed origin with a bad port), a traceback that named no
variable (a malformed DATABASE_URL or REDIS_URL), or tokens always refused
(a blank audience). Now each stops `manage.py check` with one message that
names the variable, and never quotes a URL that may hold a password.
"""

import os

import pytest
from rest_framework.throttling import SimpleRateThrottle

from core.env import env_origins, env_rate, env_str
from tests.servers import run_manage

REFUSED = {
    "zero-rate": ("AUTHSOCKET_LOGIN_THROTTLE", "0/min", "at least 1 per period"),
    "zero-frame-rate": ("AUTHSOCKET_FRAME_RATE", "0/s", "at least 1 per period"),
    "origin-bad-port": (
        "AUTHSOCKET_ALLOWED_ORIGINS",
        "http://localhost:8000,http://chat.example.org:abc",
        "'http://chat.example.org:abc' is not an origin",
    ),
    "origin-open-bracket": (
        "AUTHSOCKET_ALLOWED_ORIGINS",
        "http://[::1",
        "not an origin",
    ),
    "cors-open-bracket": ("AUTHSOCKET_CORS_ORIGINS", "http://[::1", "not an origin"),
    "host-open-bracket": ("DJANGO_ALLOWED_HOSTS", "[::1", "not a host name"),
    "redis-no-scheme": ("REDIS_URL", "notaurl", "must be a URL of scheme redis"),
    "redis-bad-port": ("REDIS_URL", "redis://:pw-secret@h:port/0", "numeric port"),
    "database-bad-port": (
        "DATABASE_URL",
        "postgres://u:pw-secret@127.0.0.1:notaport/db",
        "DATABASE_URL is not a database URL",
    ),
    "database-no-scheme": (
        "DATABASE_URL",
        "notaurl",
        "DATABASE_URL is not a database URL",
    ),
    # Read by libpq, which then refused every connection.
    "pg-connect-timeout": ("PGCONNECT_TIMEOUT", "abc", "must be an integer"),
    "huge-lifetime": ("AUTHSOCKET_REFRESH_TTL", "999999999999", "at most 2147483647"),
    "huge-history-age": ("AUTHSOCKET_HISTORY_MAX_AGE", "99999999999", "at most"),
    "huge-gc-threshold": ("AUTHSOCKET_GC_THRESHOLD", "99999999999", "at most"),
    "not-utf8": ("AUTHSOCKET_JWT_SECRET", "s\udcff" * 20, "is not valid UTF-8"),
}


def debug_env(**overrides) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSOCKET_")}
    env.pop("REDIS_URL", None)
    env.pop("DATABASE_URL", None)
    env.update(DJANGO_SETTINGS_MODULE="authsocket.settings", DJANGO_DEBUG="1")
    env.update(overrides)
    return env


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_value_that_cannot_work_stops_start_up_naming_its_variable(case):
    name, value, message = REFUSED[case]
    env = debug_env(**{name: value})
    if name == "PGCONNECT_TIMEOUT":
        env["DATABASE_URL"] = "postgres://authsocket@127.0.0.1:5432/test"
    result = run_manage(env, "check")
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {name}" in result.stderr, result.stderr
    assert message in result.stderr
    assert "pw-secret" not in result.stdout + result.stderr


def test_a_rate_with_spaces_is_written_as_drf_reads_it(monkeypatch):
    """DRF reads the period's first letter at a fixed place: `10 / min`
    failed every login with a KeyError, a 500."""
    monkeypatch.setenv("RATE", " 10 / min ")
    assert env_rate("RATE", "5/s") == "10/min"

    class Throttle(SimpleRateThrottle):
        rate = env_rate("RATE", "5/s")

    assert (Throttle().num_requests, Throttle().duration) == (10, 60)


def test_a_blank_value_is_the_default(monkeypatch):
    """A compose file's `${VAR}` of an unset variable is a blank value: an
    empty audience made tokens that every check then refused."""
    monkeypatch.setenv("AUDIENCE", "  ")
    assert env_str("AUDIENCE", "authsocket-ws") == "authsocket-ws"


def test_channels_origin_patterns_are_still_accepted(monkeypatch):
    patterns = "https://chat.example.org,.example.org,example.net,*,http://[::1]:8000"
    monkeypatch.setenv("ORIGINS", patterns)
    assert env_origins("ORIGINS", what="an origin") == patterns.split(",")
