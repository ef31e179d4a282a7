"""systemd, Procfile, Dockerfile, compose: every way of starting a process drains."""

import json
import os
import re
import secrets
import shlex
import subprocess
import sys

import pytest
import yaml

from authsocket import serve
from realtime.presence.shutdown import GOODBYE_WAIT

from .processes import ROOT

SERVE_ARGS = re.compile(r"-m authsocket\.serve (.*)")


def daphne_args(command: str) -> list[str]:
    """The arguments after `-m authsocket.serve` in a shell command line."""
    match = SERVE_ARGS.search(command)
    assert match, f"not started through authsocket.serve: {command}"
    return shlex.split(match.group(1).replace("%i", "8001").replace("$PORT", "5000"))


def parse(args: list[str]):
    cli = serve.GracefulCommandLineInterface()
    cli.configure()
    return cli.parser.parse_args(args)


def unit_value(text: str, key: str) -> str:
    return re.search(rf"^{key}=((?:.*\\\n)*.*)", text, re.MULTILINE).group(1)


def test_systemd_unit_runs_the_draining_entry_point_behind_the_proxy():
    unit = (ROOT / "deploy" / "systemd" / "authsocket@.service").read_text()
    exec_start = unit_value(unit, "ExecStart").replace("\\\n", " ")
    args = parse(daphne_args(exec_start))
    assert args.host == "127.0.0.1"  # only nginx may reach a --proxy-headers daphne
    assert args.proxy_headers
    assert args.application == "authsocket.asgi:application"
    assert "EnvironmentFile=/etc/authsocket/authsocket.env" in unit
    assert unit_value(unit, "KillSignal") == "SIGTERM"
    # systemd must not SIGKILL before the drain grace and the bounded
    # presence goodbye after it have run out (docs/deploy.md §5.1).
    assert int(unit_value(unit, "TimeoutStopSec")) > (
        serve.DEFAULT_SHUTDOWN_GRACE + GOODBYE_WAIT
    )
    assert unit_value(unit, "User") != "root"


def test_procfile_runs_the_draining_entry_point():
    lines = dict(
        line.split(":", 1)
        for line in (ROOT / "Procfile").read_text().splitlines()
        if line.strip()
    )
    args = parse(daphne_args(lines["web"]))
    assert args.proxy_headers and args.port == 5000
    assert "migrate" in lines["release"]


def test_dockerfile_is_slim_non_root_and_runs_the_draining_entry_point():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.MULTILINE)
    assert re.search(r"^USER authsocket$", text, re.MULTILINE)
    assert "collectstatic --noinput" in text
    assert re.search(r"^STOPSIGNAL SIGTERM$", text, re.MULTILINE)
    cmd = re.search(r"^CMD (\[.*?\])$", text, re.MULTILINE | re.DOTALL).group(1)
    args = yaml.safe_load(cmd.replace("\\\n", " "))
    assert args[:3] == ["python", "-m", "authsocket.serve"]
    assert parse(args[3:]).proxy_headers


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_two_daphnes_nginx_postgres_and_redis(compose):
    services = compose["services"]
    assert {"daphne1", "daphne2", "nginx", "postgres", "redis"} <= set(services)
    for name in ("daphne1", "daphne2"):
        env = services[name]["environment"]
        assert env["DJANGO_DEBUG"] == "0"
        assert env["DATABASE_URL"].startswith("postgres://")
        assert env["REDIS_URL"].startswith("redis://")
        assert env["AUTHSOCKET_TRUSTED_PROXIES"] == "1"
        grace = float(env["AUTHSOCKET_SHUTDOWN_GRACE"])
        stop_grace = int(services[name]["stop_grace_period"].rstrip("s"))
        assert stop_grace > grace + GOODBYE_WAIT
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
    volume = services["nginx"]["volumes"][0]
    assert volume.startswith("./deploy/nginx/docker.conf:")


def test_systemd_timer_prunes_history_hourly_as_the_service_user():
    systemd = ROOT / "deploy" / "systemd"
    service = (systemd / "authsocket-prune.service").read_text()
    timer = (systemd / "authsocket-prune.timer").read_text()
    command = shlex.split(unit_value(service, "ExecStart"))
    assert command[1:] == ["manage.py", "prune_history"]
    assert (ROOT / "realtime/management/commands/prune_history.py").is_file()
    assert unit_value(service, "Type") == "oneshot"
    assert "EnvironmentFile=/etc/authsocket/authsocket.env" in service
    assert unit_value(service, "User") == "authsocket"
    assert unit_value(timer, "OnCalendar") == "hourly"
    assert unit_value(timer, "WantedBy") == "timers.target"


def prune_commands() -> set[str]:
    """The project's pruning commands (`manage.py prune_*`), whatever the app."""
    return {
        path.stem
        for app in ("accounts", "realtime")
        for path in (ROOT / app / "management" / "commands").glob("prune_*.py")
    }


def test_the_hourly_timer_and_the_cron_line_run_every_pruning_command():
    """docs/security.md promises prune_credentials "hourly, with the history's
    timer": a deployment that followed docs/deploy.md ran only prune_history,
    and refresh tokens and tickets grew without bound."""
    assert {"prune_history", "prune_credentials"} <= prune_commands()
    service = (ROOT / "deploy" / "systemd" / "authsocket-prune.service").read_text()
    scheduled = {
        tuple(shlex.split(line)[1:])
        for line in re.findall(r"^ExecStart=(.*)$", service, re.MULTILINE)
    }
    assert scheduled == {("manage.py", name) for name in prune_commands()}
    guide = (ROOT / "docs" / "deploy.md").read_text()
    (cron,) = re.findall(r"^17 \* \* \* \* .*$", guide, re.MULTILINE)
    for name in prune_commands():
        assert f"manage.py {name}" in cron


# `${NAME}`, `${NAME:-default}`, `${NAME:?error}`: what compose fills from .env.
COMPOSE_VARIABLE = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")


def dotenv(text: str) -> dict[str, str]:
    """The assignments compose reads from a .env file (comments skipped)."""
    return dict(
        line.split("=", 1)
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )


def interpolate(value: str, env: dict[str, str]) -> str:
    def fill(match):
        name, operator, argument = match.groups()
        if env.get(name):
            return env[name]
        assert operator != "?", f"compose refuses to start: {argument}"
        return argument if operator == "-" else ""

    return COMPOSE_VARIABLE.sub(fill, value)


def test_compose_with_the_env_example_serves_localhost_over_plain_http(compose):
    """docs/deploy.md §7 as written: `cp .env.example .env`, set the two
    secrets, `docker compose up`, open http://localhost:8080/. The settings
    the daphne containers then get must accept that host and origin and must
    not redirect to https (none of which needs a Docker daemon to check)."""
    env = dotenv((ROOT / ".env.example").read_text())
    assert {"DJANGO_SECRET_KEY", "AUTHSOCKET_JWT_SECRET"} <= set(env)
    for secret in ("DJANGO_SECRET_KEY", "AUTHSOCKET_JWT_SECRET"):  # as the guide says
        env[secret] = secrets.token_urlsafe(48)
    container = {
        name: interpolate(str(value), env)
        for name, value in compose["services"]["daphne1"]["environment"].items()
    }
    probe = (
        "import json, django\n"
        "from django.conf import settings\n"
        "from django.http.request import validate_host\n"
        "django.setup()\n"
        "print(json.dumps({'host': validate_host('localhost', settings.ALLOWED_HOSTS),"
        " 'origins': settings.AUTHSOCKET_ALLOWED_ORIGINS,"
        " 'redirect': settings.SECURE_SSL_REDIRECT,"
        " 'hsts': settings.SECURE_HSTS_SECONDS}))\n"
    )
    answer = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={
            "PATH": os.environ.get("PATH", ""),
            "DJANGO_SETTINGS_MODULE": "authsocket.settings",
            **container,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert answer.returncode == 0, answer.stderr
    settings = json.loads(answer.stdout.strip().splitlines()[-1])
    assert settings == {
        "host": True,
        "origins": ["http://localhost:8080", "http://127.0.0.1:8080"],
        "redirect": False,
        "hsts": 0,
    }
