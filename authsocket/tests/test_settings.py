"""Production settings: `check --deploy` has nothing to say about security."""

import os
import re
import secrets
from pathlib import Path

from tests.servers import PROJECT, run_manage, server_env

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"


def check_deploy(**overrides) -> str:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "AUTHSOCKET_", "PYTEST_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="authsocket.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        AUTHSOCKET_JWT_SECRET=secrets.token_urlsafe(48),
        DJANGO_ALLOWED_HOSTS="chat.example.org",
        AUTHSOCKET_TRUSTED_PROXIES="1",
        **overrides,
    )
    result = run_manage(env, "check", "--deploy")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def security_warnings(output: str) -> set[str]:
    return set(re.findall(r"\(security\.\w+\)", output))


def test_fully_hardened_production_environment_has_no_security_warning():
    output = check_deploy(
        DJANGO_SECURE_SSL_REDIRECT="1",
        DJANGO_HSTS_SECONDS="31536000",
        DJANGO_HSTS_INCLUDE_SUBDOMAINS="1",
        DJANGO_HSTS_PRELOAD="1",
    )
    assert security_warnings(output) == set(), output


def test_guide_environment_leaves_only_the_documented_hsts_choices():
    # docs/deploy.md §9: subdomains and preload are left to the operator.
    output = check_deploy(DJANGO_SECURE_SSL_REDIRECT="1", DJANGO_HSTS_SECONDS="3600")
    assert security_warnings(output) <= {"(security.W005)", "(security.W021)"}, output


def test_without_tls_settings_only_the_documented_warnings_remain():
    # docs/deploy.md §9 justifies these for plain-HTTP trials (compose, localhost).
    output = check_deploy()
    assert security_warnings(output) <= {"(security.W004)", "(security.W008)"}, output


def test_a_presence_window_over_400_ms_is_refused_at_startup():
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSOCKET_")}
    env.update(DJANGO_SETTINGS_MODULE="authsocket.settings", DJANGO_DEBUG="1")
    result = run_manage({**env, "AUTHSOCKET_PRESENCE_WINDOW_MS": "401"}, "check")
    assert result.returncode != 0
    assert "AUTHSOCKET_PRESENCE_WINDOW_MS must be at most 400" in result.stderr
    accepted = run_manage({**env, "AUTHSOCKET_PRESENCE_WINDOW_MS": "400"}, "check")
    assert accepted.returncode == 0, accepted.stderr


def test_a_bad_log_level_or_format_is_refused_naming_the_variable():
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSOCKET_")}
    env.update(DJANGO_SETTINGS_MODULE="authsocket.settings", DJANGO_DEBUG="1")
    for name, bad in (("LOG_LEVEL", "LOUD"), ("AUTHSOCKET_LOG_FORMAT", "xml")):
        result = run_manage({**env, name: bad}, "check")
        assert result.returncode != 0
        assert f"{name} must be one of" in result.stderr, result.stderr
    for name, good in (("LOG_LEVEL", "warning"), ("AUTHSOCKET_LOG_FORMAT", "JSON")):
        accepted = run_manage({**env, name: good}, "check")
        assert accepted.returncode == 0, accepted.stderr


def test_the_examples_placeholder_secrets_are_refused_outside_debug(tmp_path):
    env = server_env(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    placeholders = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if "=change-me" in line and not line.startswith("#")
    )
    assert set(placeholders) == {"DJANGO_SECRET_KEY", "AUTHSOCKET_JWT_SECRET"}
    for name, placeholder in placeholders.items():
        result = run_manage({**env, name: placeholder}, "check")
        assert result.returncode != 0
        assert f"{name} still holds the example's placeholder" in result.stderr
    assert run_manage(env, "check").returncode == 0


def test_the_metrics_token_placeholder_is_refused_outside_debug(tmp_path):
    """The systemd example ships it commented out; uncommented as it is, a
    token anyone can read must not open /metrics."""
    example = PROJECT / "deploy" / "systemd" / "authsocket.env.example"
    line = next(
        line for line in example.read_text().splitlines() if "METRICS_TOKEN=" in line
    )
    name, placeholder = line.lstrip("# ").split("=", 1)
    env = server_env(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    result = run_manage({**env, name: placeholder}, "check")
    assert result.returncode != 0
    assert f"{name} still holds the example's placeholder" in result.stderr


def test_a_presence_ttl_of_one_second_is_accepted_and_zero_refused():
    # A test that kills a process wants its leaves fast (docs/protocol.md §1).
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSOCKET_")}
    env.update(DJANGO_SETTINGS_MODULE="authsocket.settings", DJANGO_DEBUG="1")
    accepted = run_manage({**env, "AUTHSOCKET_PRESENCE_TTL": "1"}, "check")
    assert accepted.returncode == 0, accepted.stderr
    refused = run_manage({**env, "AUTHSOCKET_PRESENCE_TTL": "0"}, "check")
    assert refused.returncode != 0
    assert "AUTHSOCKET_PRESENCE_TTL" in refused.stderr


def test_a_wildcard_allowed_origin_is_warned_by_the_deploy_check():
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSOCKET_")}
    env.update(DJANGO_SETTINGS_MODULE="authsocket.settings", DJANGO_DEBUG="1")
    strict = ("check", "--deploy", "--fail-level", "WARNING")
    named = {**env, "AUTHSOCKET_ALLOWED_ORIGINS": "https://chat.example.org"}
    assert "authsocket.W003" not in run_manage(named, *strict).stderr
    warned = run_manage(
        {**env, "AUTHSOCKET_ALLOWED_ORIGINS": "https://a.example,*"}, *strict
    )
    assert warned.returncode != 0
    assert "(authsocket.W003) AUTHSOCKET_ALLOWED_ORIGINS holds '*'" in warned.stderr


def test_the_send_buffer_holds_a_full_replay_unless_lowered_which_is_warned():
    """A limit below one replay (AUTHSOCKET_REPLAY_LIMIT messages of
    AUTHSOCKET_MAX_MESSAGE_BYTES) could drop a client that reads: warned."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSOCKET_")}
    env.update(DJANGO_SETTINGS_MODULE="authsocket.settings", DJANGO_DEBUG="1")
    strict = ("check", "--fail-level", "WARNING")
    assert run_manage(env, *strict).returncode == 0
    lowered = {**env, "AUTHSOCKET_MAX_SEND_BUFFER_BYTES": "1000000"}
    warned = run_manage(lowered, *strict)
    assert warned.returncode != 0
    assert (
        "(authsocket.W002) AUTHSOCKET_MAX_SEND_BUFFER_BYTES is below one full replay (67584000 bytes)"
        in warned.stderr
    )
    # Small messages make a small replay: 100 × (1,000 + 2,048) bytes fit.
    small = {
        **lowered,
        "AUTHSOCKET_MAX_MESSAGE_BYTES": "1000",
        "AUTHSOCKET_REPLAY_LIMIT": "100",
    }
    assert run_manage(small, *strict).returncode == 0
    # Below one frame of the largest message, no client could be sent one.
    refused = run_manage({**env, "AUTHSOCKET_MAX_SEND_BUFFER_BYTES": "67583"}, "check")
    assert refused.returncode != 0
    assert "AUTHSOCKET_MAX_SEND_BUFFER_BYTES must be at least 67584" in refused.stderr


def test_the_sockets_of_a_process_hold_four_limits_together_and_never_less_than_one():
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSOCKET_")}
    env.update(DJANGO_SETTINGS_MODULE="authsocket.settings", DJANGO_DEBUG="1")
    show = (
        "shell",
        "-c",
        "from django.conf import settings as s; print(s.AUTHSOCKET_MAX_SEND_BUFFER_BYTES,"
        " s.AUTHSOCKET_MAX_PROCESS_SEND_BUFFER_BYTES)",
    )
    assert numbers(run_manage(env, *show)) == ["67584000", str(4 * 67584000)]
    # The default follows a lowered limit per socket.
    lowered = {**env, "AUTHSOCKET_MAX_SEND_BUFFER_BYTES": "1000000"}
    assert numbers(run_manage(lowered, *show)) == ["1000000", "4000000"]
    alone = {**lowered, "AUTHSOCKET_MAX_PROCESS_SEND_BUFFER_BYTES": "1000000"}
    assert numbers(run_manage(alone, *show)) == ["1000000", "1000000"]
    refused = run_manage(
        {**lowered, "AUTHSOCKET_MAX_PROCESS_SEND_BUFFER_BYTES": "999999"}, "check"
    )
    assert refused.returncode != 0
    assert (
        "AUTHSOCKET_MAX_PROCESS_SEND_BUFFER_BYTES must be at least 1000000"
        in refused.stderr
    )


def numbers(done) -> list[str]:
    """The last line `manage.py shell -c` printed, in words (the shell may
    announce what it imported first)."""
    return done.stdout.strip().splitlines()[-1].split()
