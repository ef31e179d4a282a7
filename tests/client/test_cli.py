"""The command line, run as a person would: `python -m authsocket_client ...`."""

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys

import jwt
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


def test_a_reader_that_stops_early_ends_the_command_quietly(tmp_path):
    token = jwt.encode({"sub": "1", "exp": 2**31}, "any-key", algorithm="HS256")
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head` having exited: every write is EPIPE
    try:
        done = subprocess.run(
            [sys.executable, "-m", "authsocket_client", "--tokens"]
            + [str(tmp_path / "tokens.json"), "token", token],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=30,
        )
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (141, "")


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


async def next_line(stream) -> str:
    line = await stream.readline()
    assert line, "the listener exited"
    return line.decode()


async def test_listen_prints_presence_and_messages_and_survives_a_restart(
    server, tmp_path
):
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

    async def publish_and_read(text: str) -> dict:
        published = await asyncio.to_thread(
            cli, server, tokens, "publish", "room:lobby", json.dumps({"text": text})
        )
        assert published.returncode == 0, published.stderr
        assert published.stdout.startswith("published room:lobby #")
        line = json.loads(await next_line(listener.stdout))
        assert line["event"] == "message", line
        return line

    try:
        async with asyncio.timeout(40):
            while "[live]" not in await next_line(listener.stderr):
                pass
            # Presence is on by default for rooms: the snapshot comes first.
            snapshot = json.loads(await next_line(listener.stdout))
            assert snapshot["event"] == "presence.snapshot", snapshot
            assert [u["username"] for u in snapshot["users"]] == ["alice"]
            first = await publish_and_read("before the restart")
            assert first["data"] == {"text": "before the restart"}

            await asyncio.to_thread(server.stop, signal.SIGTERM)  # closes 4503
            await asyncio.to_thread(server.start)
            while "[live]" not in await next_line(listener.stderr):
                pass
            again = json.loads(await next_line(listener.stdout))
            assert again["event"] == "presence.snapshot", again
            second = await publish_and_read("after the restart")
            assert second["id"] == first["id"] + 1
    finally:
        listener.terminate()
        await listener.wait()


def test_presence_shows_who_is_on_a_stream_and_a_hidden_one_plainly(server, tmp_path):
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
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("room:lobby present (0)")
    hidden = cli(server, tokens, "presence", "room:no-such-room")
    assert hidden.returncode == 1
    assert "no presence for room:no-such-room" in hidden.stderr
    assert "Traceback" not in hidden.stderr


async def test_publish_without_tokens_says_to_sign_in(server, tmp_path):
    done = await asyncio.to_thread(
        cli, server, tmp_path / "none.json", "publish", "room:lobby", "{}"
    )
    assert done.returncode == 1
    assert "not_authenticated" in done.stderr and "Traceback" not in done.stderr
