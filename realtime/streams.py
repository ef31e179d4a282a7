"""Stream names of docs/protocol.md §4.2, parsed strictly into `Stream` values.

A name is `<kind>:<key>` (at most `MAX_STREAM_NAME_LENGTH` characters) of a
declared kind (realtime/kind_registry.py) whose key pattern matches the
whole key; the bare `user` is the caller's own `user:<id>`. Anything else parses to None,
which every caller treats like a stream the user may not touch: nothing is
authorized by accident.
"""

from dataclasses import dataclass, field

from realtime.groups import presence_group, stream_group
from realtime.kind_registry import StreamKind, registry
from realtime.protocol import (
    MAX_STREAM_NAME_LENGTH,
    ROOM_KIND,
    USER_KIND,
    USER_STREAM,
    USER_STREAM_PREFIX,
)


@dataclass(frozen=True, slots=True)
class Stream:
    """The stream `<kind.name>:<key>`."""

    kind: StreamKind
    key: str
    # The full name: `room:<slug>`, `user:<id>`, `doc:<id>` … Made once: a
    # subscribe with presence reads it several times.
    name: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", f"{self.kind.name}:{self.key}")

    @property
    def label(self) -> str:
        """The name its subscribers see: `user` for every user stream alias."""
        return stream_label(self.name)

    @property
    def group(self) -> str:
        return stream_group(self.kind.name, self.key)

    @property
    def presence_group(self) -> str:
        """The sockets of this stream that asked for presence."""
        return presence_group(self.group)

    @property
    def keeps_presence(self) -> bool:
        return self.kind.presence

    @property
    def is_user(self) -> bool:
        return self.kind.name == USER_KIND

    @property
    def keeps_history(self) -> bool:
        return self.kind.history is not None


def stream_parse(name, *, user_id: int | None) -> Stream | None:
    """The stream a client names; `user` means the caller's own (`user_id`).

    `user_id=None` (the server API) accepts full names only.
    """
    if not isinstance(name, str) or len(name) > MAX_STREAM_NAME_LENGTH:
        return None
    if not name.isprintable():
        return None  # NUL, control or surrogate characters: no kind's, whatever its pattern
    if name == USER_STREAM:
        return None if user_id is None else user_stream(user_id)
    kind_name, colon, key = name.partition(":")
    kind = registry.get(kind_name) if colon else None
    if kind is None or not kind.matches(key):
        return None
    return Stream(kind, key)


def stream_label(name: str) -> str:
    """`user:<id>` is `user` to its owner; every other name is itself."""
    return USER_STREAM if name.startswith(USER_STREAM_PREFIX) else name


def slug_is_valid(slug: str) -> bool:
    return registry.get(ROOM_KIND).matches(slug)


def room_stream(slug: str) -> Stream:
    return Stream(registry.get(ROOM_KIND), slug)


def user_stream(user_id: int) -> Stream:
    return Stream(registry.get(USER_KIND), str(user_id))
