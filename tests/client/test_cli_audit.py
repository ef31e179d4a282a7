"""The command line where people stop it: Ctrl-C at a prompt, while it
connects and while it streams, standard input that ends, a reader that goes
away (`| head -1`), and arguments that cannot mean anything."""

import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import time

import pytest

from authsocket_client import FileTokenStore, Tokens
from tests.client.conftest import LocalTcpServer
from tests.client.test_cli import UNREACHABLE, cli, cli_login

pytestmark = [pytest.mark.e2e]

# What a person's environment may hold, and must not answer a prompt here.
QUIET_ENV = {k: v for k, v in os.environ.items() if k != "AUTHSOCKET_PASSWORD"}


async def spawn(url: str, tokens, *args: str, **options):
    """The command as a person starts it, without a controlling terminal (so
    getpass prompts on stderr and reads standard input, not this terminal)."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "authsocket_client",
        "--url",
        url,
        "--tokens",
        str(tokens),
        *args,
        env=QUIET_ENV,
        start_new_session=True,
        **options,
    )


async def interrupted(process, timeout: float = 10) -> tuple[int, str]:
    """Ctrl-C (SIGINT); its exit code and what it wrote to stderr after."""
    process.send_signal(signal.SIGINT)
    try:
        async with asyncio.timeout(timeout):
            _, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return process.returncode, (err or b"").decode()


async def reading_a_pipe(process) -> None:
    """Return once `process` waits in a read of its standard input.

    The prompt is written just before that read starts. A SIGINT landing in
    between is only noted by Python, which looks at it when the read returns:
    never, here (CPython checks signals after an interrupted read, not before
    a read). A person cannot press Ctrl-C in those microseconds; a test can,
    so it waits until the kernel has the process asleep in the read.
    """
    wchan = f"/proc/{process.pid}/wchan"
    while True:
        with open(wchan) as kernel:
            if kernel.read() == "anon_pipe_read":
                return
        await asyncio.sleep(0.005)  # a kernel state: no event to await


@pytest.mark.parametrize(
    "args, prompt_on, prompt",
    [
        ((), "stdout", b"username: "),
        (("--username", "bob"), "stderr", b"Password: "),
    ],
    ids=["username", "password"],
)
async def test_ctrl_c_at_a_login_prompt_ends_the_command_at_once(
    tmp_path, args, prompt_on, prompt
):
    """One Ctrl-C at the prompt ends `login` with 130. Asked inside the event
    loop, the prompt swallowed it: the first SIGINT only cancelled the task
    that input() held up, and the prompt went on waiting."""
    process = await spawn(
        UNREACHABLE.http,
        tmp_path / "t.json",
        "login",
        *args,
        stdin=asyncio.subprocess.PIPE,  # held open: the prompt waits
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stream = process.stdout if prompt_on == "stdout" else process.stderr
    await killed_unless(process, stream.readuntil(prompt))
    await killed_unless(process, reading_a_pipe(process))
    code, err = await interrupted(process)
    assert code == 130, err
    assert "Traceback" not in err, err


@pytest.mark.parametrize(
    "args, missing",
    [
        ((), "a username"),
        (("--username", "bob", "--password-stdin"), "the password"),
        (("--username", "bob"), "the password"),  # getpass, reading stdin
    ],
    ids=["username", "password-stdin", "password-prompt"],
)
async def test_standard_input_that_ends_before_an_answer_is_a_plain_error(
    tmp_path, args, missing
):
    """`login < /dev/null`: one line saying what was missing, exit 1, and no
    request with an empty password."""
    process = await spawn(
        UNREACHABLE.http,
        tmp_path / "t.json",
        "login",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        _, err = await process.communicate()
    err = err.decode()
    assert "Traceback" not in err, err
    assert process.returncode == 1
    assert f"error: standard input ended before {missing}" in err, err


@pytest.mark.parametrize(
    "args, option",
    [
        (("publish", "room:lobby", "{}", "--timeout", "0"), "--timeout"),
        (("publish", "room:lobby", "{}", "--timeout", "-1"), "--timeout"),
        (("publish", "room:lobby", "{}", "--timeout", "nan"), "--timeout"),
        (("listen", "room:lobby", "--since", "-1"), "--since"),
    ],
    ids=["timeout-0", "timeout-negative", "timeout-nan", "since-negative"],
)
def test_arguments_that_mean_nothing_are_usage_errors(server, tmp_path, args, option):
    """Exit 2 before anything is sent, as for any other bad argument: not a
    publish that gives up before trying, nor a socket opened to be refused."""
    tokens = tmp_path / "tokens.json"
    assert cli_login(server, tokens).returncode == 0
    done = cli(server, tokens, *args)
    assert done.returncode == 2, done.stderr
    assert f"argument {option}" in done.stderr, done.stderr


def first_line(fd: int, timeout: float = 30) -> bytes:
    """Read `fd` until its first newline, bounded."""
    got = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in got:
        left = deadline - time.monotonic()
        assert left > 0, f"no line in {timeout}s: {got!r}"
        readable, _, _ = select.select([fd], [], [], left)
        if readable:
            chunk = os.read(fd, 4096)
            assert chunk, f"the listener closed its output: {got!r}"
            got += chunk
    return got.split(b"\n", 1)[0]


def test_listen_whose_reader_is_gone_ends_without_waiting_for_a_line(server, tmp_path):
    """`listen room:lobby | head -1`: once head has its line and exits, the
    listener ends (141, as a shell reports SIGPIPE), although the room stays
    quiet. It used to stay connected until its next line failed to print,
    listed as present in the room all along."""
    tokens = tmp_path / "tokens.json"
    assert cli_login(server, tokens, "alice").returncode == 0
    read_end, write_end = os.pipe()
    listener = subprocess.Popen(
        [sys.executable, "-m", "authsocket_client", "--url", server.http]
        + ["--tokens", str(tokens), "listen", "room:lobby"],
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(write_end)
    try:
        assert first_line(read_end).startswith(b"room:lobby present (1): alice")
        os.close(read_end)  # head -1 has its line
        read_end = None
        _, err = listener.communicate(timeout=15)
    finally:
        if read_end is not None:
            os.close(read_end)
        if listener.poll() is None:
            listener.kill()
            listener.wait()
    assert (listener.returncode, "Traceback" in err) == (141, False), err
    # Gone from the room, not only from the pipe.
    assert cli(server, tokens, "presence", "room:lobby").stdout.startswith(
        "room:lobby present (0)"
    )


class SilentServer(LocalTcpServer):
    """Accepts connections and never answers: a handshake that hangs."""

    def __init__(self):
        self.arrived = asyncio.Event()

    async def _serve(self, reader, writer):
        self.arrived.set()
        await reader.read()  # until the client goes away
        writer.close()


async def listening(url: str, tokens):
    """`listen room:lobby`, its output and errors piped to the test."""
    return await spawn(
        url,
        tokens,
        "listen",
        "room:lobby",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def killed_unless(process, awaitable, timeout: float = 15):
    """What `awaitable` gives within `timeout`; the process is killed if not."""
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except BaseException:
        process.kill()
        await process.wait()
        raise


async def test_ctrl_c_while_connecting_and_while_streaming_exits_130(server, tmp_path):
    """Ctrl-C ends `listen` cleanly with 130 wherever it is: in a handshake
    the server never answers, and while messages stream."""
    tokens = tmp_path / "tokens.json"
    async with SilentServer() as silent:
        FileTokenStore(tokens, silent.url).save(
            Tokens("a.b.c", "r", time.time() + 300, 300)
        )
        connecting = await listening(silent.url, tokens)
        await killed_unless(connecting, silent.arrived.wait())
        code, err = await interrupted(connecting)
        assert (code, "Traceback" in err) == (130, False), err

    done = await asyncio.to_thread(cli_login, server, tokens, "alice")
    assert done.returncode == 0, done.stderr
    streaming = await listening(server.http, tokens)
    line = await killed_unless(streaming, streaming.stdout.readline())
    assert line.startswith(b"room:lobby present"), line
    code, err = await interrupted(streaming)
    assert (code, "Traceback" in err) == (130, False), err
    assert "[stopped] closed" in err, err


CORRUPT_TOKEN_FILES = {
    "not JSON": b'{"http://x": {"access": ',
    "not an object": b"[]",
    "not UTF-8": b"\xff\xfe\x00",
}


@pytest.mark.parametrize(
    "content", CORRUPT_TOKEN_FILES.values(), ids=list(CORRUPT_TOKEN_FILES)
)
def test_a_corrupt_token_file_is_named_and_never_overwritten(server, tmp_path, content):
    """A token file the CLI cannot read is an error that names it, for every
    command that reads it; it is not "sign in first", and a login does not
    replace it: it may hold other servers' sessions."""
    tokens = tmp_path / "tokens.json"
    tokens.write_bytes(content)
    for command in (("me",), ("token",), ("logout",)):
        done = cli(UNREACHABLE, tokens, *command)
        assert done.returncode == 1, (command, done.stdout)
        assert str(tokens) in done.stderr and "sign in first" not in done.stderr
        assert "Traceback" not in done.stderr
    login = cli_login(server, tokens)
    assert login.returncode == 1 and str(tokens) in login.stderr
    assert tokens.read_bytes() == content


def test_a_token_file_entry_of_the_wrong_types_is_named_not_a_traceback(tmp_path):
    """An entry with the right keys and wrong types (hand-edited, another
    program's) was used as it was: `token` died on a numeric `access`,
    `publish` stopped with `client_error` and a logged traceback. The file
    is unreadable, and said so, as a corrupt one is."""
    tokens = tmp_path / "tokens.json"
    entry = {"access": 12345, "refresh": "r", "expires_at": "soon", "lifetime": None}
    tokens.write_text(json.dumps({UNREACHABLE.http: {**entry, "user": None}}))
    publish = ("publish", "room:lobby", "{}", "--timeout", "5")
    for command in (("token",), ("me",), publish):
        done = cli(UNREACHABLE, tokens, *command)
        assert "Traceback" not in done.stderr, done.stderr
        assert done.returncode == 1, (command, done.stdout)
        assert done.stderr.startswith("error: token_file_unreadable"), done.stderr
        assert str(tokens) in done.stderr
