"""Tokens held by a client, where they are kept, and how to read a JWT's claims.

A `TokenStore` is shared by everything that uses one session (API calls,
sockets, other processes through a file): after a refresh the newest pair is
saved there, and a refresh that lost a race (`token_rotated`) takes it back.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from authsocket_client.errors import AuthSocketError, TokenFileUnreadable
from authsocket_client.protocol import is_user

try:
    import fcntl
except ImportError:  # not POSIX: saves are atomic, but not serialized
    fcntl = None  # type: ignore[assignment]

# What an access token may hold: a JWT's base64url segments and their dots.
# Anything else could not be sent in a header (nor in a subprotocol).
_JWT_TEXT = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Tokens:
    """A login or refresh answer; `expires_at` is local wall-clock time.

    The two secrets stay out of `repr`, so logging a `Tokens` leaks nothing.
    """

    access: str = field(repr=False)
    refresh: str | None = field(repr=False)
    expires_at: float
    lifetime: float
    user: dict[str, Any] | None = None

    @classmethod
    def from_answer(cls, body: dict[str, Any], *, now: float | None = None) -> Tokens:
        """Built from `{"access", "refresh", "expires_in", "user"}` (login, refresh).

        Checked, not trusted: without an access token and a positive lifetime
        (a proxy's page, a broken server) it is `bad_response`, transient, and
        never tokens that would have the renewer refresh in a tight loop.
        An access token outside the JWT alphabet (non-ASCII, CR/LF) could
        not go in a header: every call would fail with an error quoting it.
        The error never quotes the answer: it holds the tokens.

        A `user` that is not a user object (with an integer `id`) is left
        out: it only names whom the tokens are for, and a refresh's tokens
        are kept whatever it says, as the refresh token sent is spent.
        """
        access = body.get("access") if isinstance(body, dict) else None
        lifetime = _lifetime(body.get("expires_in") if isinstance(body, dict) else None)
        if not isinstance(access, str) or not _JWT_TEXT.fullmatch(access):
            raise AuthSocketError(
                "bad_response", "a token answer needs a JWT as `access`"
            )
        if lifetime is None:
            raise AuthSocketError(
                "bad_response", "a token answer needs a positive `expires_in`"
            )
        return cls(
            access=access,
            refresh=body.get("refresh"),
            expires_at=(time.time() if now is None else now) + lifetime,
            lifetime=lifetime,
            user=body["user"] if is_user(body.get("user")) else None,
        )

    def remaining(self) -> float:
        """Seconds until the access token expires (by our clock)."""
        return self.expires_at - time.time()


class TokenStore(Protocol):
    """Where a session's newest tokens live; `load` may see another writer's."""

    def load(self) -> Tokens | None: ...

    def save(self, tokens: Tokens | None) -> None: ...


class MemoryTokenStore:
    """Tokens kept in this process only (share one instance between clients)."""

    def __init__(self, tokens: Tokens | None = None):
        self._tokens = tokens

    def load(self) -> Tokens | None:
        return self._tokens

    def save(self, tokens: Tokens | None) -> None:
        self._tokens = tokens


def default_token_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "authsocket" / "tokens.json"


class FileTokenStore:
    """Tokens in a JSON file (mode 0600), one entry per server URL.

    Several processes may share it: writes are atomic (rename), and a process
    that lost a refresh race reads the winner's tokens from here. A save
    reads the file and writes it whole, under an exclusive lock (a
    `.lock` file beside it), so that two writers never put back each
    other's older entry: that would bring back a rotated refresh token.
    """

    def __init__(self, path: Path | str, url: str):
        self.path = Path(path)
        self.url = url.rstrip("/")

    def _entries(self) -> dict[str, Any]:
        """Every server's entry; none when there is no file yet.

        A file that is there but unreadable raises TokenFileUnreadable.
        """
        try:
            entries = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise TokenFileUnreadable(self.path, exc.strerror or str(exc)) from exc
        except ValueError as exc:  # not JSON, or not UTF-8
            raise TokenFileUnreadable(self.path, "not JSON") from exc
        if not isinstance(entries, dict):
            raise TokenFileUnreadable(self.path, "not a JSON object")
        return entries

    def load(self) -> Tokens | None:
        """This server's tokens; None when there are none. An entry whose
        fields are of the wrong type (hand-edited, written by another
        program) raises TokenFileUnreadable: used as they are, they failed
        deep inside a call, with a traceback."""
        entry = self._entries().get(self.url)
        if not isinstance(entry, dict):
            return None
        try:
            tokens = Tokens(**entry)
        except TypeError:
            return None
        wrong = _wrong_field(tokens)
        if wrong is not None:
            raise TokenFileUnreadable(
                self.path, f"the `{wrong}` saved for {self.url} is not of its type"
            )
        return tokens

    def save(self, tokens: Tokens | None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._locked():
            entries = self._entries()
            if tokens is None:
                entries.pop(self.url, None)
            else:
                entries[self.url] = asdict(tokens)
            self._write(entries)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if fcntl is None:
            yield
            return
        lock = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released when closed
            yield
        finally:
            os.close(fd)

    def _write(self, entries: dict[str, Any]) -> None:
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".tokens-")
        try:
            os.fchmod(fd, 0o600)  # before any secret is written
            with os.fdopen(fd, "w") as file:
                json.dump(entries, file, indent=2)
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise


def _wrong_field(tokens: Tokens) -> str | None:
    """The first field of `tokens` that is not of its type (times: finite
    numbers, the lifetime above 0, as a token answer gives them); never its
    value, which may be a secret."""
    fields = {
        "access": isinstance(tokens.access, str),
        "refresh": tokens.refresh is None or isinstance(tokens.refresh, str),
        "expires_at": _finite(tokens.expires_at),
        "lifetime": _lifetime(tokens.lifetime) is not None,
        "user": tokens.user is None or isinstance(tokens.user, dict),
    }
    return next((name for name, right in fields.items() if not right), None)


def _finite(value: Any) -> bool:
    """A finite number (a bool is none; nor an integer too big for a float)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _lifetime(value: Any) -> float | None:
    """`expires_in` as seconds, if a positive finite number; an integer too
    big for a float (JSON allows it) is none."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        seconds = float(value)
    except OverflowError:
        return None
    return seconds if 0 < seconds < math.inf else None


def jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a JWT, NOT verified: for display and timing only.

    A client has no key to check the signature with; the server checks it.
    Raises ValueError when the text is not a JWT.
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWT (expected three dot-separated parts)")
    try:
        header, claims = (json.loads(_b64url_decode(part)) for part in parts[:2])
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(f"not a JWT: {exc}") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise ValueError("not a JWT (header and claims must be JSON objects)")
    return header, claims


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
