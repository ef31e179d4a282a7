"""Telling live sockets that a right to read a stream may have been lost.

docs/protocol.md §4.2: leaving or being removed from a room, a room made
private or deleted, and whatever a project's kind reports through
`realtime.kinds.rights_changed`, end the subscriptions that depended on it.
After the change commits, one `stream.revoke` event per stream goes to the
sockets concerned; each re-checks its own user's right with
realtime.permissions (or, for a stream that is gone, just drops it) and
answers `unsubscribed` with reason `forbidden` when it is lost.
"""

from collections.abc import Iterable

from django.db import transaction

from realtime.broadcast import group_send
from realtime.groups import user_group
from realtime.protocol import StreamEvent
from realtime.streams import room_stream, stream_parse

NOT_DELIVERED = "access change not delivered: sockets keep the stream for now"


def streams_access_changed(
    *, names: Iterable[str], user_id: int | None = None, gone: bool = False
) -> None:
    """After commit: re-check each named stream on one user's sockets, or on all.

    Names no kind owns are skipped: nobody can hold them.
    """
    events = []
    for name in names:
        stream = stream_parse(name, user_id=None)
        if stream is None or stream.is_user:  # one's own stream is never lost
            continue
        group = user_group(user_id) if user_id is not None else stream.group
        event = {"type": StreamEvent.REVOKE.value, "stream": stream.name, "gone": gone}
        events.append((group, event))
    if events:
        transaction.on_commit(lambda: _send(events))


def room_access_changed(*, slug: str, user_id: int | None = None, gone=False) -> None:
    """After commit: re-check `room:<slug>` on one user's sockets, or on all."""
    streams_access_changed(names=[room_stream(slug).name], user_id=user_id, gone=gone)


def _send(events: list[tuple[str, dict]]) -> None:
    for group, event in events:
        group_send(group, event, fallback=NOT_DELIVERED)
