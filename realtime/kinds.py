"""Stream kinds: the public API a project uses to add its own streams.

A kind owns every stream named `<kind>:<key>`. A project declares one in a
`stream_kinds.py` module of its own app (found at startup), subclassing
`StreamKind` and decorating it with `@register`; realtime's built-ins, `user`
and `room`, are declared the same way in realtime/stream_kinds.py. See
docs/extending.md ("Stream kinds"). The kinds themselves and their registry
live in realtime/kind_registry.py, under everything else of realtime; this
module adds what a project's code calls on top of it.
"""

from collections.abc import Iterable

from realtime.kind_registry import (
    STREAM_KINDS_MODULE,
    Access,
    History,
    KindRegistry,
    Publishers,
    StreamKind,
    register,
    registry,
)
from realtime.publish import stream_publish
from realtime.revalidation import streams_access_changed

__all__ = [
    "STREAM_KINDS_MODULE",
    "Access",
    "History",
    "KindRegistry",
    "Publishers",
    "StreamKind",
    "publish",
    "register",
    "registry",
    "rights_changed",
]


def rights_changed(
    *, stream: str | None = None, streams: Iterable[str] = (), user_id=None
) -> None:
    """Rights to read these streams may have changed: re-check live sockets.

    Call it where the change is made (inside its transaction or not): the
    re-check runs after commit, on the sockets of `user_id` only when given,
    and each socket that lost the right gets `unsubscribed` with reason
    `forbidden`.
    """
    names = [stream, *streams] if stream is not None else list(streams)
    streams_access_changed(names=names, user_id=user_id)


def publish(*, stream: str, data, sender=None):
    """Store (or, without history, just number) and deliver after commit.

    For the project's own code; no right is checked. Returns the message.
    """
    return stream_publish(name=stream, data=data, sender=sender)
