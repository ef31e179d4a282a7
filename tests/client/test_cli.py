"""The command line, run as a person would: `python -m authsocket_client ...`."""

import asyncio
import json
import stat
import subprocess
import sys

import pytest

from tests.client.conftest import PASSWORD

pytestmark = [pytest.mark.e2e]


def cli(server, tokens, *args, stdin: str | None = None):
    return subprocess.run(
        [sys.executable, "-m", "authsocket_client", "--url", server.http]
        + ["--tokens", str(tokens), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_login_saves_tokens_0600_and_token_shows_claims_unverified(server, tmp_path):
    tokens = tmp_path / "config" / "tokens.json"
    done = cli(
        server,
        tokens,
        "login",
        "--username",
        "bob",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert done.returncode == 0, done.stderr
    assert "signed in as bob" in done.stdout
    assert stat.S_IMODE(tokens.stat().st_mode) == 0o600
    assert PASSWORD not in tokens.read_text()

    shown = cli(server, tokens, "token")
    assert shown.returncode == 0, shown.stderr
    assert "NOT verified" in shown.stdout and "time left:" in shown.stdout
    assert 'typ: "access"' in shown.stdout

    assert cli(server, tokens, "token", "not-a-jwt").returncode == 1


def test_wrong_password_fails_with_the_wire_code(server, tmp_path):
    done = cli(
        server,
        tmp_path / "t.json",
        "login",
        "--username",
        "bob",
        "--password-stdin",
        stdin="nope\n",
    )
    assert done.returncode == 1
    assert "invalid_credentials" in done.stderr and "sign in again" in done.stderr


async def test_listen_prints_what_publish_sends(server, tmp_path):
    tokens = tmp_path / "tokens.json"
    done = await asyncio.to_thread(
        cli,
        server,
        tokens,
        "login",
        "--username",
        "alice",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert done.returncode == 0, done.stderr
    listener = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "authsocket_client",
        "--url",
        server.http,
        "--tokens",
        str(tokens),
        "listen",
        "room:lobby",
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(20):
            while b"[live]" not in await listener.stderr.readline():
                pass
            published = await asyncio.to_thread(
                cli, server, tokens, "publish", "room:lobby", '{"text": "from the cli"}'
            )
            assert published.returncode == 0, published.stderr
            assert published.stdout.startswith("published room:lobby #")
            # Presence comes first (on by default for rooms): skip to the message.
            line = json.loads(await listener.stdout.readline())
            while line["event"] != "message":
                line = json.loads(await listener.stdout.readline())
        assert line["data"] == {"text": "from the cli"}
    finally:
        listener.terminate()
        await listener.wait()


def test_presence_reports_a_missing_feature_plainly(server, tmp_path):
    tokens = tmp_path / "tokens.json"
    cli(
        server,
        tokens,
        "login",
        "--username",
        "alice",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    done = cli(server, tokens, "presence", "room:lobby")
    if done.returncode == 0:
        assert "room:lobby present" in done.stdout
    else:
        assert "no presence for room:lobby" in done.stderr
    assert "Traceback" not in done.stderr


async def test_publish_without_tokens_says_to_sign_in(server, tmp_path):
    done = await asyncio.to_thread(
        cli, server, tmp_path / "none.json", "publish", "room:lobby", "{}"
    )
    assert done.returncode == 1
    assert "not_authenticated" in done.stderr and "Traceback" not in done.stderr
