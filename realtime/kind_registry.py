"""What a stream kind is, and the registry of the kinds a project declared.

The layer the rest of realtime reads kinds from: it imports nothing of
realtime, so streams, permissions, history and publishing all build on it.
A project imports the same names from `realtime.kinds`, the public API,
which adds `publish` and `rights_changed` on top (docs/extending.md).
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

KIND_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
STREAM_KINDS_MODULE = "stream_kinds"  # the module each app may declare kinds in


class Access(Enum):
    """The answer of `StreamKind.can_read`."""

    ALLOWED = "allowed"
    FORBIDDEN = "forbidden"  # the user may see the stream, not this action
    HIDDEN = "hidden"  # answered exactly like a stream that does not exist


class Publishers(Enum):
    """Who may publish on a kind's streams."""

    CLIENTS = "clients"  # users passing `can_publish`, and the server API
    SERVER = "server"  # the server API (and the project's own code) only
    NOBODY = "nobody"  # only the project's own code, through `publish`


@dataclass(frozen=True, slots=True)
class History:
    """How much of a stream is kept; None takes the setting (docs/protocol.md §1)."""

    max_per_stream: int | None = None
    max_age: int | None = None  # seconds

    def per_stream(self) -> int:
        if self.max_per_stream is not None:
            return self.max_per_stream
        return settings.AUTHSOCKET_HISTORY_MAX_PER_STREAM

    def age(self) -> int:
        return (
            self.max_age
            if self.max_age is not None
            else settings.AUTHSOCKET_HISTORY_MAX_AGE
        )


# A century, in seconds: pruning subtracts the age from now, and a date
# before year 1 cannot be made (manage.py prune_history would crash).
MAX_HISTORY_AGE = 100 * 365 * 24 * 3600


class StreamKind:
    """One kind of stream; subclass, set the attributes, override the checks.

    `key_pattern` must match the whole key. Keys are used in channel-layer
    group names when they fit (ASCII letters, digits, `-`, `_`, `.`), and
    hashed into one otherwise, so any pattern is safe.
    """

    name: str = ""
    key_pattern: str = ""
    publishers: Publishers = Publishers.SERVER
    history: History | None = History()  # None: numbered, never stored
    presence: bool = False
    # Whether the checks get the user as stored now (one read by primary key
    # per decision) rather than the object a socket has held since its
    # handshake, whose fields and Django permission cache may be hours old.
    fresh_user: bool = True

    def can_read(self, user, key: str) -> Access:
        """Whether `user` (active, authenticated) may subscribe and read history."""
        return Access.HIDDEN

    def can_publish(self, user, key: str) -> bool:
        """With `Publishers.CLIENTS`: whether `user`, who may read, may publish."""
        return False

    def exists(self, key: str) -> bool:
        """Whether the server API may publish to `key` (False → 404)."""
        return True

    def publish_access(self, user, key: str) -> Access:
        """Read, then publish: override to decide both in one query."""
        access = self.can_read(user, key)
        if access is not Access.ALLOWED:
            return access
        return Access.ALLOWED if self.can_publish(user, key) else Access.FORBIDDEN

    def matches(self, key: str) -> bool:
        """The key is the kind's: `key_pattern` matches all of it."""
        return re.fullmatch(self.key_pattern, key) is not None

    def __repr__(self) -> str:
        return f"<stream kind {self.name!r}>"


class KindRegistry:
    """Every declared kind by name; a second kind of one name is refused."""

    def __init__(self) -> None:
        self.kinds: dict[str, StreamKind] = {}

    def add(self, kind: StreamKind) -> None:
        _check(kind)
        earlier = self.kinds.get(kind.name)
        if earlier is not None:
            raise ImproperlyConfigured(
                f"Two stream kinds claim the streams {kind.name}:<key>: "
                f"{_where(earlier)} and {_where(kind)}. Rename one of them."
            )
        self.kinds[kind.name] = kind

    def get(self, name: str) -> StreamKind | None:
        return self.kinds.get(name)

    def __iter__(self) -> Iterator[StreamKind]:
        return iter(list(self.kinds.values()))


registry = KindRegistry()


def register(kind_class: type[StreamKind]) -> type[StreamKind]:
    """Class decorator: declare the kind (in your app's `stream_kinds.py`)."""
    registry.add(kind_class())
    return kind_class


def _check(kind: StreamKind) -> None:
    if not KIND_NAME.fullmatch(kind.name or ""):
        raise ImproperlyConfigured(
            f"{_where(kind)}: name {kind.name!r} must match {KIND_NAME.pattern}."
        )
    try:
        re.compile(kind.key_pattern)
    except (re.error, TypeError) as exc:
        raise ImproperlyConfigured(
            f"{_where(kind)}: key_pattern is not a regular expression ({exc})."
        ) from exc
    if not kind.key_pattern:
        raise ImproperlyConfigured(f"{_where(kind)}: set key_pattern.")
    if kind.history is not None and not isinstance(kind.history, History):
        raise ImproperlyConfigured(f"{_where(kind)}: history must be History or None.")
    _check_settings(kind)


def _check_settings(kind: StreamKind) -> None:
    """A mistyped setting must not pass for another one (a truthy "no" for
    presence, a string for publishers that no rule recognises)."""
    if not isinstance(kind.publishers, Publishers):
        raise ImproperlyConfigured(
            f"{_where(kind)}: publishers must be Publishers.CLIENTS, "
            f"Publishers.SERVER or Publishers.NOBODY, not {kind.publishers!r}."
        )
    for flag in ("presence", "fresh_user"):
        if not isinstance(getattr(kind, flag), bool):
            raise ImproperlyConfigured(
                f"{_where(kind)}: {flag} must be True or False, "
                f"not {getattr(kind, flag)!r}."
            )
    if kind.history is None:
        return
    for field, most in (("max_per_stream", None), ("max_age", MAX_HISTORY_AGE)):
        value = getattr(kind.history, field)
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < 1
            or (most is not None and value > most)
        ):
            bound = f"between 1 and {most}" if most else "of at least 1"
            raise ImproperlyConfigured(
                f"{_where(kind)}: history {field} must be a whole number {bound}, "
                f"or None for the setting's value; not {value!r}."
            )


def _where(kind: StreamKind) -> str:
    cls = type(kind)
    return f"{cls.__module__}.{cls.__qualname__}"
