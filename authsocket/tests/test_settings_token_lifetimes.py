"""An access token cannot outlive its session: an AUTHSOCKET_ACCESS_TTL above
AUTHSOCKET_REFRESH_TTL is refused at start-up, naming both variables."""

import os

from tests.servers import run_manage


def debug_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSOCKET_")}
    env.update(DJANGO_SETTINGS_MODULE="authsocket.settings", DJANGO_DEBUG="1")
    return {**env, **overrides}


def test_an_access_ttl_longer_than_the_session_is_refused_at_startup():
    result = run_manage(
        debug_env(AUTHSOCKET_ACCESS_TTL="3601", AUTHSOCKET_REFRESH_TTL="3600"), "check"
    )
    assert result.returncode != 0
    assert "AUTHSOCKET_ACCESS_TTL (3601 s)" in result.stderr, result.stderr
    assert "AUTHSOCKET_REFRESH_TTL (3600 s)" in result.stderr


def test_against_the_default_session_lifetime_too():
    result = run_manage(debug_env(AUTHSOCKET_ACCESS_TTL="1209601"), "check")
    assert result.returncode != 0
    assert "AUTHSOCKET_REFRESH_TTL (1209600 s)" in result.stderr, result.stderr


def test_an_access_ttl_as_long_as_the_session_is_accepted():
    accepted = run_manage(
        debug_env(AUTHSOCKET_ACCESS_TTL="3600", AUTHSOCKET_REFRESH_TTL="3600"), "check"
    )
    assert accepted.returncode == 0, accepted.stderr
