"""The command line, run as a person would: `python -m authsocket_client ...`."""

import asyncio
import base64
import json
import os
import signal
import stat
import subprocess
import sys
import time
from types import SimpleNamespace

import jwt
import pytest

from authsocket_client import ApiClient, FileTokenStore, Tokens
from tests.client.conftest import PASSWORD, ScriptedServer
from tests.client.test_hostile_server import api_stub
from tests.http import http_origin
from tests.servers import free_port

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


def cli_login(server, tokens, username: str = "bob", password: str = PASSWORD):
    """`login --password-stdin` as `username`."""
    return cli(
        server,
        tokens,
        "login",
        "--username",
        username,
        "--password-stdin",
        stdin=password + "\n",
    )


def test_login_saves_tokens_0600_and_token_shows_claims_unverified(server, tmp_path):
    tokens = tmp_path / "config" / "tokens.json"
    done = cli_login(server, tokens)
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
    done = cli_login(server, tmp_path / "t.json", password="nope")
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
    done = await asyncio.to_thread(cli_login, server, tokens, "alice")
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
    cli_login(server, tokens, "alice")
    done = cli(server, tokens, "presence", "room:lobby")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("room:lobby present (0)")
    hidden = cli(server, tokens, "presence", "room:no-such-room")
    assert hidden.returncode == 1
    assert "no presence for room:no-such-room" in hidden.stderr
    assert "Traceback" not in hidden.stderr


PRESENCE_SHAPES = {
    "a list": [],
    "an HTML page": b"<html>maintenance</html>",
    "users not a list": {"users": 5, "count": 1},
}


@pytest.mark.parametrize("body", PRESENCE_SHAPES.values(), ids=list(PRESENCE_SHAPES))
def test_presence_answered_with_the_wrong_shape_is_one_error_line(tmp_path, body):
    """A presence answer that is no object with a `users` list (a proxy's
    page, a broken server) ended `presence` with a traceback. It is the
    transient `bad_response`: one `error:` line, exit 1."""
    presence = ("GET", "/api/streams/room:lobby/presence")
    tokens = tmp_path / "tokens.json"
    with http_origin(api_stub({presence: [(200, body)]})) as origin:
        held = Tokens("a.b.c", "r", time.time() + 300, 300)
        FileTokenStore(tokens, origin).save(held)
        done = cli(SimpleNamespace(http=origin), tokens, "presence", "room:lobby")
    assert done.returncode == 1, done.stdout
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("error: bad_response")


@pytest.mark.parametrize("user", ["alice", {"username": "alice"}])
def test_a_login_answer_whose_user_is_no_user_saves_nothing(tmp_path, user):
    """A login answer whose `user` was a string was saved, and `login` then
    died printing whom it signed in as. It is `bad_response`, one `error:`
    line, and no tokens are saved."""
    login = ("POST", "/api/auth/login")
    answer = {"access": "a.b.c", "refresh": "r", "expires_in": 300, "user": user}
    tokens = tmp_path / "tokens.json"
    with http_origin(api_stub({login: [(200, answer)]})) as origin:
        done = cli_login(SimpleNamespace(http=origin), tokens)
    assert done.returncode == 1, done.stdout
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("error: bad_response")
    assert not tokens.exists()


async def test_publish_without_tokens_says_to_sign_in(server, tmp_path):
    done = await asyncio.to_thread(
        cli, server, tmp_path / "none.json", "publish", "room:lobby", "{}"
    )
    assert done.returncode == 1
    assert "not_authenticated" in done.stderr and "Traceback" not in done.stderr


BOB = {"id": 2, "username": "bob"}

# A server nobody listens on: the port was free a moment ago.
UNREACHABLE = SimpleNamespace(http=f"http://127.0.0.1:{free_port()}")


def unverified_jwt(claims_json: str) -> str:
    """A JWT whose claims are the given text, as a hostile or broken issuer
    could write it (not strict JSON: `Infinity`, `NaN`)."""

    def part(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()

    header = part(json.dumps({"alg": "HS256"}))
    return f"{header}.{part(claims_json)}.c2ln"


@pytest.mark.parametrize(
    "claims",
    [
        '{"exp": 1e300}',
        '{"exp": -1e20}',
        '{"exp": Infinity}',
        '{"exp": NaN}',
        '{"iat": 99999999999999}',
    ],
)
def test_token_shows_times_out_of_range_plainly(tmp_path, claims):
    """`token` is for looking at a token that may be broken: a time no clock
    can show is printed as it is, never a traceback."""
    done = cli(UNREACHABLE, tmp_path / "t.json", "token", unverified_jwt(claims))
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 0 and "NOT verified" in done.stdout


def test_token_too_deep_to_parse_is_not_a_jwt(tmp_path):
    deep = "[" * 20_000 + "]" * 20_000
    done = cli(UNREACHABLE, tmp_path / "t.json", "token", unverified_jwt(deep))
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 1 and "not a JWT" in done.stderr


@pytest.mark.parametrize("url", ["http://[::1", "ftp://example.com", "localhost:8000"])
def test_a_url_the_client_cannot_use_is_a_usage_error(tmp_path, url):
    done = cli(SimpleNamespace(http=url), tmp_path / "t.json", "me")
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2 and "--url" in done.stderr


def test_publish_to_an_unreachable_server_fails_in_bounded_time(tmp_path):
    """A socket retries an unreachable server without end, which suits
    `listen` (it says so on stderr); `publish` is one command that must
    end: it gives up after its timeout, with an error that says why."""
    tokens = tmp_path / "t.json"
    held = Tokens("a.b.c", "r", time.time() + 300, 300)
    FileTokenStore(tokens, UNREACHABLE.http).save(held)
    started = time.monotonic()
    done = cli(UNREACHABLE, tokens, "publish", "room:lobby", "{}")  # 10 s default
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 1 and "no live connection" in done.stderr
    assert time.monotonic() - started < 20


def test_a_token_file_that_cannot_be_written_is_a_plain_error(server, tmp_path):
    """Signed in, but the tokens cannot be saved where `--tokens` says (a
    directory here): an error naming the file, not a traceback."""
    tokens = tmp_path / "a-directory"
    tokens.mkdir()
    done = cli_login(server, tokens)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 1 and str(tokens) in done.stderr


async def test_logout_of_a_session_already_revoked_still_forgets_its_tokens(
    server, tmp_path
):
    """`logout` revokes the session and forgets its tokens. Revoked already
    (logout-all elsewhere, a password change), there is nothing to revoke,
    but the dead tokens must not stay on disk: they are removed, and the
    command says why it had nothing to do."""
    tokens = tmp_path / "tokens.json"
    signed_in = await asyncio.to_thread(cli_login, server, tokens)
    assert signed_in.returncode == 0, signed_in.stderr
    store = FileTokenStore(tokens, server.http)
    async with ApiClient(server.http, store=store) as api:
        await api.request("POST", "/api/auth/logout-all")
    done = await asyncio.to_thread(cli, server, tokens, "logout")
    assert done.returncode == 0, done.stderr
    assert "already ended" in done.stdout and "revoked" in done.stdout
    assert store.load() is None


async def signed_in_listener(server, tmp_path, *args: str):
    """`authsocket_client listen *args` as a process, signed in to `server`."""
    tokens = tmp_path / "tokens.json"
    held = Tokens("a.b.c", "r", time.time() + 300, 300)
    FileTokenStore(tokens, server.url).save(held)
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "authsocket_client",
        "--url",
        server.url,
        "--tokens",
        str(tokens),
        "listen",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_listen_whose_first_connection_drops_before_the_answer_goes_on(
    tmp_path,
):
    """`listen` reconnects by itself, from its start too: a connection that
    drops before a stream is answered `subscribed` leaves the stream held
    (the next welcome subscribes it again), so the command goes on instead
    of exiting `disconnected`."""
    async with ScriptedServer() as server:
        listener = await signed_in_listener(server, tmp_path, "room:r", "--json")
        try:
            async with asyncio.timeout(20):
                got = {}
                while "room:r" not in got:
                    _, frame, _ = await server.next(timeout=10)
                    got[frame["stream"]] = frame
                await server.connections[0].close(1011)  # room:r never answered
                while True:
                    ws, frame, _ = await server.next(timeout=10)
                    await server.answer(ws, frame)
                    if frame["stream"] == "room:r":
                        break
                message = {"type": "message", "stream": "room:r", "id": 1, "data": 7}
                await ws.send(json.dumps(message))
                line = json.loads(await next_line(listener.stdout))
                assert (line["event"], line["id"], line["data"]) == ("message", 1, 7)
        finally:
            if listener.returncode is None:
                listener.terminate()
            await listener.wait()


async def test_listen_skips_a_message_whose_sender_is_not_a_user(tmp_path):
    """A message whose `sender` was a string reached `listen`, which died on
    it (AttributeError, exit 1). It is a malformed frame: ignored, with a
    warning, and the command goes on to print the next message."""
    async with ScriptedServer() as server:
        listener = await signed_in_listener(server, tmp_path, "room:r", "--no-presence")
        try:
            async with asyncio.timeout(20):
                while True:
                    ws, frame, _ = await server.next(timeout=10)
                    await server.answer(ws, frame)
                    if frame["stream"] == "room:r":
                        break
                message = {"type": "message", "stream": "room:r", "data": 7}
                await ws.send(json.dumps({**message, "id": 1, "sender": "bob"}))
                await ws.send(json.dumps({**message, "id": 2, "sender": BOB}))
                assert await next_line(listener.stdout) == "room:r #2 bob: 7\n"
        finally:
            if listener.returncode is None:
                listener.terminate()
            await listener.wait()


@pytest.mark.parametrize(
    "data", ['{"v": NaN}', '{"v": -Infinity}', '{"v": 1e999}', '"\\ud800"']
)
def test_publish_data_that_is_not_strict_json_is_a_usage_error(tmp_path, data):
    """Python's json reads NaN and Infinity (and 1e999 as infinity), which
    JSON has not: sent, the server could not parse the frame, and the
    command waited out its timeout. Like any argument that is not JSON, a
    usage error (exit 2), before any connection."""
    done = cli(UNREACHABLE, tmp_path / "t.json", "publish", "room:lobby", data)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2 and "DATA must be JSON" in done.stderr, done.stderr
