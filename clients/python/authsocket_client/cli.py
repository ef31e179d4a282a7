"""A command line for people, like wscat for this protocol.

    python -m authsocket_client login --username alice
    python -m authsocket_client listen room:lobby
    python -m authsocket_client publish room:lobby '{"text": "hi"}'
    python -m authsocket_client presence room:lobby
    python -m authsocket_client token

Tokens are kept in a file (mode 0600), by default
~/.config/authsocket/tokens.json, one entry per server URL.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import math
import os
import select
import stat
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from authsocket_client.api import ApiClient
from authsocket_client.errors import (
    ApiError,
    AuthSocketError,
    CredentialsRejected,
    Disconnected,
)
from authsocket_client.presence import PresenceEvent
from authsocket_client.protocol import DEFAULT_URL, TRANSPORTS, strict_json
from authsocket_client.socket import Message, Unsubscribed
from authsocket_client.tokens import FileTokenStore, default_token_path, jwt_parts

# How long `publish` tries to get a live socket: a socket retries an
# unreachable server without end, and one command must end.
PUBLISH_TIMEOUT = 10.0

UNVERIFIED = (
    "NOT verified: this tool holds no key, so it cannot check the signature "
    "(the server does); trust nothing below"
)


def server_url(text: str) -> str:
    """`--url`: an http(s) URL with a host, else a usage error (not a traceback
    from deep inside httpx or websockets)."""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a URL: {text!r} ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(
            f"not an http:// or https:// URL with a host: {text!r}"
        )
    return text


def message_id(text: str) -> int:
    """`--since`: a message id (0: everything stored), refused here rather than
    by the server after a connection."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a message id: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"not a message id: {text!r} (0 or more)")
    return value


def seconds(text: str) -> float:
    """`--timeout`: a number of seconds above 0 (`inf` waits without end); 0,
    a negative number or NaN would give up before trying."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:  # NaN too
        raise argparse.ArgumentTypeError(f"not a number of seconds above 0: {text!r}")
    return value


class InputEnded(Exception):
    """Standard input ended before a prompt had its answer."""


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m authsocket_client", description=__doc__.split("\n\n")[0]
    )
    top.add_argument(
        "--url",
        type=server_url,
        default=os.environ.get("AUTHSOCKET_URL", DEFAULT_URL),
        help=f"the server (default {DEFAULT_URL}, or $AUTHSOCKET_URL)",
    )
    top.add_argument(
        "--tokens",
        type=Path,
        default=None,
        help=f"token file (default {default_token_path()})",
    )
    commands = top.add_subparsers(dest="command", required=True)

    login = commands.add_parser("login", help="sign in and save the tokens")
    login.add_argument("--username", help="prompted for when missing")
    login.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (else $AUTHSOCKET_PASSWORD, else a prompt)",
    )
    commands.add_parser("logout", help="revoke this session and forget its tokens")
    commands.add_parser("me", help="who the saved tokens belong to")

    listen = commands.add_parser(
        "listen", help="print messages and presence as they come; reconnects by itself"
    )
    listen.add_argument("streams", nargs="+", metavar="STREAM")
    listen.add_argument(
        "--since",
        type=message_id,
        default=None,
        help="replay stored messages after this id",
    )
    presence = listen.add_mutually_exclusive_group()
    presence.add_argument(
        "--presence",
        dest="presence",
        action="store_true",
        default=None,
        help="ask for presence (default: on for room: streams)",
    )
    presence.add_argument("--no-presence", dest="presence", action="store_false")
    listen.add_argument("--json", action="store_true", help="one JSON object a line")
    listen.add_argument("--transport", choices=TRANSPORTS, default="header")

    publish = commands.add_parser("publish", help="publish JSON data to a stream")
    publish.add_argument("stream")
    publish.add_argument("data", help='JSON, e.g. \'{"text": "hi"}\'')
    publish.add_argument("--transport", choices=TRANSPORTS, default="header")
    publish.add_argument(
        "--timeout",
        type=seconds,
        default=PUBLISH_TIMEOUT,
        help=f"seconds to get a live socket, then an answer (default {PUBLISH_TIMEOUT:g})",
    )

    who = commands.add_parser("presence", help="who is on a stream now")
    who.add_argument("stream")

    token = commands.add_parser(
        "token", help="show a token's claims and time left (without verifying it)"
    )
    token.add_argument(
        "token", nargs="?", help="a JWT (default: the saved access token)"
    )
    return top


def main(argv: list[str] | None = None) -> int:
    """Run one command; a reader that stops early (`| head`) ends it quietly."""
    try:
        return run(argv)
    except BrokenPipeError:
        # Python would report the pipe again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports it


def run(argv: list[str] | None) -> int:
    args = parser().parse_args(argv)
    store = FileTokenStore(args.tokens or default_token_path(), args.url)
    try:
        if args.command == "token":
            return show_token(args, store)
        if args.command == "login":
            # Asked before the event loop runs: inside it, a Ctrl-C at a
            # prompt only cancels the task that input() holds up, and the
            # prompt goes on waiting. An unreadable token file fails first:
            # before the password is typed, and before a session is made
            # that could not be saved.
            store.load()
            args.username, args.password = read_credentials(args)
        return asyncio.run(COMMANDS[args.command](args, store))
    except KeyboardInterrupt:
        return 130
    except InputEnded as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except CredentialsRejected as exc:
        print(f"error: {exc} — sign in again: login", file=sys.stderr)
        return 1
    except AuthSocketError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        raise  # `main` ends quietly
    except OSError as exc:  # the token file: unwritable, a directory, ...
        print(f"error: {exc}", file=sys.stderr)
        return 1


def read_credentials(args: argparse.Namespace) -> tuple[str, str]:
    """The username (`--username`, else a prompt) and the password (standard
    input, $AUTHSOCKET_PASSWORD, else a prompt); InputEnded at end of input."""
    try:
        username = args.username or input("username: ")
    except EOFError:
        raise InputEnded("standard input ended before a username") from None
    if args.password_stdin:
        line = sys.stdin.readline()
        if not line:  # an empty line is a (wrong) password; no line is none
            raise InputEnded("standard input ended before the password")
        return username, line.rstrip("\n")
    try:
        return username, os.environ.get("AUTHSOCKET_PASSWORD") or getpass.getpass()
    except EOFError:
        raise InputEnded("standard input ended before the password") from None


async def cmd_login(args: argparse.Namespace, store: FileTokenStore) -> int:
    async with ApiClient(args.url, store=store) as api:
        tokens = await api.login(args.username, args.password)
    user = tokens.user or {}
    print(
        f"signed in as {user.get('username')} (user {user.get('id')}); "
        f"tokens saved to {store.path} (mode 0600)"
    )
    return 0


async def cmd_logout(args: argparse.Namespace, store: FileTokenStore) -> int:
    held = store.load() is not None
    async with ApiClient(args.url, store=store) as api:
        try:
            await api.logout()
        except CredentialsRejected as exc:
            if not held:
                raise  # nothing saved: "sign in first"
            print(
                f"signed out: the session had already ended ({exc.code}); tokens removed"
            )
            return 0
    print("signed out; tokens removed")
    return 0


async def cmd_me(args: argparse.Namespace, store: FileTokenStore) -> int:
    async with ApiClient(args.url, store=store) as api:
        print(json.dumps(await api.me(), indent=2))
    return 0


async def cmd_listen(args: argparse.Namespace, store: FileTokenStore) -> int:
    show = _json_line if args.json else _human_line

    def on_state(state: str, reason: str) -> None:
        print(f"[{state}] {reason}", file=sys.stderr, flush=True)

    async with ApiClient(args.url, store=store) as api:
        socket = api.socket(transport=args.transport, on_state=on_state)
        socket.start()
        printing = asyncio.create_task(_print_events(socket, args, show))
        reader_gone = _stdout_reader_gone()
        either: set[asyncio.Future[Any]] = {printing, reader_gone}
        try:
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            if not printing.done():
                raise BrokenPipeError("standard output: its reader is gone")
            return printing.result()
        finally:
            printing.cancel()
            reader_gone.cancel()
            await socket.close()


async def _print_events(socket: Any, args: argparse.Namespace, show: Callable) -> int:
    """Subscribe each stream, then print every event until the socket stops."""
    for stream in args.streams:
        presence = (
            stream.startswith("room:") if args.presence is None else args.presence
        )
        try:
            await socket.subscribe(stream, since=args.since, presence=presence)
        except Disconnected:
            # Not answered, but held: the next welcome subscribes it.
            print(
                f"[{stream}] the connection closed before the answer; "
                "subscribing again on the next one",
                file=sys.stderr,
            )
    async for event in socket:
        print(show(event), flush=True)
    return 0


def _stdout_reader_gone() -> asyncio.Future[None]:
    """Done when standard output is a pipe whose reader has exited
    (`listen | head -1`, head done): a quiet stream would otherwise keep the
    command connected, and listed as present, until its next line fails to
    print. Never done for a terminal or a file, nor where the event loop
    cannot watch the pipe (no poll(), or no add_reader: Windows)."""
    loop = asyncio.get_running_loop()
    gone: asyncio.Future[None] = loop.create_future()
    try:
        fd = sys.stdout.fileno()
        if not stat.S_ISFIFO(os.fstat(fd).st_mode) or not hasattr(select, "poll"):
            return gone
    except (OSError, ValueError):  # no stdout, or not a real file
        return gone

    def check() -> None:
        # The write end of a pipe is never readable: the selector wakes us
        # for an error only, POLLERR once the reader is gone. Anything else
        # (another platform's selector) ends the watch rather than spin.
        loop.remove_reader(fd)
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        broken = any(mask & select.POLLERR for _, mask in poller.poll(0))
        if broken and not gone.done():
            gone.set_result(None)

    try:
        loop.add_reader(fd, check)
    except (NotImplementedError, OSError, ValueError):
        return gone
    gone.add_done_callback(lambda _: loop.remove_reader(fd))
    return gone


async def cmd_publish(args: argparse.Namespace, store: FileTokenStore) -> int:
    try:
        data = json.loads(args.data, parse_constant=_not_a_constant)
        strict_json(data)  # a lone surrogate (`"\ud800"`) is not sent either
    except ValueError as exc:
        print(f"error: DATA must be JSON ({exc})", file=sys.stderr)
        return 2
    async with ApiClient(args.url, store=store) as api:
        socket = api.socket(transport=args.transport)
        try:
            try:
                await socket.wait_live(args.timeout)
            except TimeoutError:
                print(
                    f"error: no live connection to {args.url} in {args.timeout:g} s "
                    "(unreachable, or refusing the socket)",
                    file=sys.stderr,
                )
                return 1
            message_id = await socket.publish(args.stream, data, timeout=args.timeout)
        finally:
            await socket.close()
    print(f"published {args.stream} #{message_id}")
    return 0


def _not_a_constant(name: str) -> Any:
    """`json.loads` takes NaN, Infinity and -Infinity, which JSON has not:
    the server could not read the frame, and the command would wait out
    its timeout for an answer that never comes."""
    raise ValueError(f"{name} is not JSON")


async def cmd_presence(args: argparse.Namespace, store: FileTokenStore) -> int:
    async with ApiClient(args.url, store=store) as api:
        try:
            snapshot = await api.stream_presence(args.stream)
        except ApiError as exc:
            if exc.status != 404:
                raise
            print(
                f"no presence for {args.stream}: hidden, unknown, without presence, "
                "or a server without presence",
                file=sys.stderr,
            )
            return 1
    print(_human_line(_snapshot_event(args.stream, snapshot)))
    return 0


def show_token(args: argparse.Namespace, store: FileTokenStore) -> int:
    source = "given on the command line"
    token = args.token
    if token is None:
        tokens = store.load()
        if tokens is None:
            print(f"no saved tokens for {store.url} in {store.path}", file=sys.stderr)
            return 1
        token, source = tokens.access, f"saved for {store.url}"
    try:
        header, claims = jwt_parts(token)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"access token {source}")
    print(f"signature: {UNVERIFIED}")
    print(f"header: {json.dumps(header)}")
    for name, value in claims.items():
        shown = _when(value) if name in ("exp", "iat", "nbf") else json.dumps(value)
        print(f"  {name}: {shown}")
    exp = claims.get("exp")
    if isinstance(exp, int | float) and math.isfinite(exp):
        left = exp - time.time()
        verdict = (
            _duration(left) if left > 0 else f"none, expired {_duration(-left)} ago"
        )
        print(f"time left: {verdict} (by this machine's clock)")
    return 0


COMMANDS: dict[str, Callable[..., Any]] = {
    "login": cmd_login,
    "logout": cmd_logout,
    "me": cmd_me,
    "listen": cmd_listen,
    "publish": cmd_publish,
    "presence": cmd_presence,
}


# --- output ----------------------------------------------------------------------


def _human_line(event: Any) -> str:
    if isinstance(event, Message):
        sender = (event.sender or {}).get("username") or "server"
        replay = " (replay)" if event.replay else ""
        return f"{event.stream} #{event.id}{replay} {sender}: {json.dumps(event.data)}"
    if isinstance(event, PresenceEvent):
        if event.kind == "snapshot":
            names = ", ".join(str(u.get("username")) for u in event.users)
            return f"{event.stream} present ({event.count}): {names}"
        sign = "+" if event.kind == "join" else "-"
        return f"{event.stream} {sign} {(event.user or {}).get('username')} ({event.count} present)"
    if isinstance(event, Unsubscribed):
        return f"{event.stream} unsubscribed by the server: {event.reason}"
    return repr(event)


def _json_line(event: Any) -> str:
    if isinstance(event, Message):
        kind = "message"
    elif isinstance(event, PresenceEvent):
        kind = f"presence.{event.kind}"
    else:
        kind = "unsubscribed"
    return json.dumps({"event": kind, **event.__dict__}, default=list)


def _snapshot_event(stream: str, snapshot: Any) -> PresenceEvent:
    """The presence answer as the socket's snapshot event. Checked, not
    trusted: an answer that is not an object with a list of `users` (a
    proxy's page, a broken server) is the transient `bad_response`, one
    `error:` line; users that are not objects are left out."""
    listed = snapshot.get("users") if isinstance(snapshot, dict) else None
    if not isinstance(listed, list):
        raise AuthSocketError("bad_response", "a presence answer needs a `users` list")
    users = tuple(u for u in listed if isinstance(u, dict))
    count = snapshot.get("count")
    if not isinstance(count, int):
        count = len(users)
    return PresenceEvent(stream, "snapshot", None, users, count, True)


def _when(value: Any) -> str:
    if not isinstance(value, int | float):
        return json.dumps(value)
    try:
        stamp = datetime.fromtimestamp(value, UTC).isoformat(timespec="seconds")
    except (OverflowError, OSError, ValueError):  # no date: far off, or not finite
        return f"{json.dumps(value)} (not a date this machine can show)"
    return f"{value} ({stamp})"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m {seconds}s"
    return f"{minutes}m {seconds}s" if minutes else f"{seconds}s"
