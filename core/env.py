"""Typed readers for the environment variables of docs/protocol.md §1.

Settings are parsed once here, so a bad value fails at start-up with a message
that names the variable instead of surfacing later as a confusing error.
"""

import math
import os
import re
import secrets
import time
from pathlib import Path
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(s|sec|second|m|min|minute|h|hour|d|day)\s*$")
_PERIOD_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def env_str(name: str, default: str = "") -> str:
    """The variable's text, stripped; `default` when unset or blank (a compose
    file's `${VAR}` of an unset variable), refused when it is not UTF-8."""
    value = os.environ.get(name, "").strip()
    try:
        value.encode()
    except UnicodeEncodeError:  # bytes the OS decoded with surrogateescape
        raise ImproperlyConfigured(f"{name} is not valid UTF-8.") from None
    return value or default


# The examples (.env.example, deploy/systemd/authsocket.env.example) ship
# secrets starting with this; a copied example must not become a production
# secret anyone can read.
PLACEHOLDER_SECRET = "change-me"


def env_secret(name: str, *, debug: bool) -> str:
    """A secret, "" when unset; outside debug the examples' placeholder is refused."""
    value = env_str(name)
    if not debug and value.startswith(PLACEHOLDER_SECRET):
        raise ImproperlyConfigured(
            f"{name} still holds the example's placeholder: replace it with a "
            "random value (docs/deploy.md shows how to make one)."
        )
    return value


def env_bool(name: str, default: bool = False) -> bool:
    raw = env_str(name)
    if not raw:
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be 1 or 0, not {raw!r}.")


# What a C int holds: as many seconds (68 years) stay within what a datetime
# can add, Redis and SQLite store it, and `gc.set_threshold` takes it.
INT_MAXIMUM = 2**31 - 1

BYTES_MAXIMUM = 2**62  # a buffer's size in bytes: above any memory


def env_int(
    name: str, default: int, *, minimum: int = 0, maximum: int = INT_MAXIMUM
) -> int:
    raw = env_str(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}.") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}.")
    if value > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum}.")
    return value


def env_seconds(name: str, default: float) -> float:
    """A duration in seconds: any finite number, negative ones taken as 0.

    `inf` and `nan` parse as floats, but a wait that never ends (a drain that
    never lets the process exit) is no duration.
    """
    raw = env_str(name)
    if not raw:
        return default
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds):
        raise ImproperlyConfigured(f"{name} must be a number of seconds, not {raw!r}.")
    return max(0.0, seconds)


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = env_str(name)
    if not raw:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """One of `choices`, compared without regard to case; `default` when unset."""
    raw = env_str(name) or default
    for choice in choices:
        if raw.lower() == choice.lower():
            return choice
    raise ImproperlyConfigured(
        f"{name} must be one of {', '.join(choices)}, not {raw!r}."
    )


def env_rate(name: str, default: str) -> str:
    """An `N/period` rate, written as DRF reads it: `10 / min` → `10/min`.

    DRF reads the period's first letter at a fixed place, so a space kept
    there failed every throttled request; and N must be at least 1, or
    nothing would ever pass.
    """
    raw = env_str(name, default)
    match = _RATE.match(raw)
    if not match:
        raise ImproperlyConfigured(f"{name} must look like '10/min' or '50/s'.")
    count, period = int(match.group(1)), match.group(2)
    if count < 1:
        raise ImproperlyConfigured(f"{name} must allow at least 1 per period.")
    return f"{count}/{period}"


def env_origins(name: str, default: list[str] | None = None, *, what: str) -> list[str]:
    """A list of origins or host names, each one that urllib can read.

    Read on every request that carries one, an entry with a bad port or an
    unclosed `[` raised there, as a 500 anyone could cause; here it stops
    start-up. `what` says what an entry should look like.
    """
    entries = env_list(name, default)
    for entry in entries:
        if entry != "*" and not _readable_origin(entry):
            raise ImproperlyConfigured(f"{name}: {entry!r} is not {what}.")
    return entries


def _readable_origin(entry: str) -> bool:
    try:
        parsed = urlparse(entry if "://" in entry else "//" + entry)
        parsed.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        return False
    return bool(parsed.hostname)


def env_url(name: str, *, schemes: tuple[str, ...]) -> str:
    """A URL with one of `schemes` and a readable port, "" when unset.

    Never quoted in the error: it may hold a password.
    """
    raw = env_str(name)
    if not raw:
        return raw
    try:
        parsed = urlparse(raw)
        parsed.port  # noqa: B018
    except ValueError:
        parsed = None
    if parsed is None or parsed.scheme not in schemes:
        raise ImproperlyConfigured(
            f"{name} must be a URL of scheme {', '.join(schemes)} with a "
            "numeric port, if any."
        )
    return raw


def env_max_message_bytes() -> int:
    """`AUTHSOCKET_MAX_MESSAGE_BYTES`, for settings.py and for authsocket.serve,
    which sizes daphne's limits from it before Django is set up."""
    return env_int("AUTHSOCKET_MAX_MESSAGE_BYTES", 65536, minimum=1)


# Room in one `message` frame for what surrounds its data: the type, a stream
# name of up to 128 characters, the sender's id and username (up to 150
# characters, 4 bytes each at worst in UTF-8), the id and the timestamp.
FRAME_ENVELOPE_BYTES = 2048


def full_replay_bytes(replay_limit: int, max_message_bytes: int) -> int:
    """The most one `subscribe` can send in one burst: a whole replay of the
    largest messages, each in its frame."""
    return replay_limit * (max_message_bytes + FRAME_ENVELOPE_BYTES)


def env_max_send_buffer_bytes(*, replay_limit: int, max_message_bytes: int) -> int:
    """`AUTHSOCKET_MAX_SEND_BUFFER_BYTES`: by default one full replay (a burst
    the server makes itself must never drop a client that reads); never below
    one frame of the largest message."""
    return env_int(
        "AUTHSOCKET_MAX_SEND_BUFFER_BYTES",
        full_replay_bytes(replay_limit, max_message_bytes),
        minimum=max_message_bytes + FRAME_ENVELOPE_BYTES,
        maximum=BYTES_MAXIMUM,
    )


# The default limit of a process's sockets together, in sockets at their own
# limit: room for a few replays at once, far below what ten thousand sockets
# at the limit each would hold.
PROCESS_SEND_BUFFERS = 4


def env_max_process_send_buffer_bytes(*, per_socket: int) -> int:
    """`AUTHSOCKET_MAX_PROCESS_SEND_BUFFER_BYTES`: by default four sockets at
    their limit; never below one (a replay the limit per socket lets through
    must not be dropped by this one when it is alone)."""
    return env_int(
        "AUTHSOCKET_MAX_PROCESS_SEND_BUFFER_BYTES",
        PROCESS_SEND_BUFFERS * per_socket,
        minimum=per_socket,
        maximum=BYTES_MAXIMUM,
    )


def env_log_format() -> str:
    """`AUTHSOCKET_LOG_FORMAT`, `plain` or `json`: for settings.py's log lines and
    for authsocket.serve's access log, chosen before Django is set up."""
    return env_choice("AUTHSOCKET_LOG_FORMAT", "plain", ("plain", "json"))


def parse_rate(rate: str) -> tuple[int, int]:
    """`"50/s"` → `(50, 1)`: the number of events and the period in seconds."""
    match = _RATE.match(rate)
    if not match:
        raise ValueError(f"not a rate: {rate!r}")
    return int(match.group(1)), _PERIOD_SECONDS[match.group(2)[0]]


def development_secret_key(path: Path) -> str:
    """The debug-only secret key, generated once and shared through a file.

    Several processes (two daphnes, `manage.py notify`) must agree on it or
    each would reject the others' tokens, so it is created atomically with
    O_EXCL and read by everyone after the first writer. A file that cannot
    be made or read stops start-up with one line that names it.
    """
    try:
        return _development_secret_key(path)
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not a text file"
        raise ImproperlyConfigured(
            f"The development key file {path} cannot be used ({reason}): "
            "delete it to regenerate, or set DJANGO_SECRET_KEY."
        ) from None


def _development_secret_key(path: Path) -> str:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process may be between creating the file and writing it.
        for _ in range(100):
            key = path.read_text().strip()
            if key:
                return key
            time.sleep(0.01)
        raise ImproperlyConfigured(
            f"{path} is empty; delete it to regenerate."
        ) from None
    key = secrets.token_urlsafe(50)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key
