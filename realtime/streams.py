"""Stream names of docs/protocol.md §4.2, parsed strictly into `Stream` values.

A name that does not match exactly (`user`, `user:<id>`, `room:<slug>`, at most
`MAX_STREAM_NAME_LENGTH` characters) parses to None, which every caller treats
like a stream the user may not touch: nothing is authorized by accident.
"""

import re
from dataclasses import dataclass

from realtime.groups import room_group, user_group
from realtime.protocol import (
    MAX_STREAM_NAME_LENGTH,
    ROOM_SLUG_PATTERN,
    ROOM_STREAM_PREFIX,
    USER_ID_PATTERN,
    USER_STREAM,
    USER_STREAM_PREFIX,
)

_ROOM = re.compile(rf"{re.escape(ROOM_STREAM_PREFIX)}({ROOM_SLUG_PATTERN})")
_USER = re.compile(rf"{re.escape(USER_STREAM_PREFIX)}({USER_ID_PATTERN})")
_SLUG = re.compile(ROOM_SLUG_PATTERN)


@dataclass(frozen=True, slots=True)
class Stream:
    """A room (`slug`) or a user's private stream (`user_id`)."""

    slug: str | None = None
    user_id: int | None = None

    @property
    def is_room(self) -> bool:
        return self.slug is not None

    @property
    def key(self) -> str:
        """Canonical name: `room:<slug>`, or `user` for every user stream alias."""
        return f"{ROOM_STREAM_PREFIX}{self.slug}" if self.is_room else USER_STREAM

    @property
    def group(self) -> str:
        return room_group(self.slug) if self.is_room else user_group(self.user_id)


def stream_parse(name, *, user_id: int) -> Stream | None:
    """The stream a client names; `user` means the caller's own (`user_id`)."""
    if not isinstance(name, str) or len(name) > MAX_STREAM_NAME_LENGTH:
        return None
    if name == USER_STREAM:
        return Stream(user_id=user_id)
    if match := _ROOM.fullmatch(name):
        return Stream(slug=match[1])
    if match := _USER.fullmatch(name):
        return Stream(user_id=int(match[1]))
    return None


def slug_is_valid(slug: str) -> bool:
    return bool(_SLUG.fullmatch(slug))


def room_stream(slug: str) -> Stream:
    return Stream(slug=slug)


def user_stream(user_id: int) -> Stream:
    return Stream(user_id=user_id)
