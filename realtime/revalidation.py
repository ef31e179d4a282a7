"""Telling live sockets that a right to read a stream may have been lost.

docs/protocol.md §4.2: leaving or being removed from a room, a room made private or
deleted end the subscriptions that depended on it. After the change commits,
one `stream.revoke` event goes to the sockets concerned; each re-checks its own
user's right with realtime.permissions (or, for a deleted room, just drops it)
and answers `unsubscribed` with reason `forbidden` when it is gone.
"""

from django.db import transaction

from realtime.broadcast import group_send
from realtime.groups import room_group, user_group
from realtime.protocol import StreamEvent
from realtime.streams import room_stream

NOT_DELIVERED = "access change not delivered: sockets keep the stream for now"


def room_access_changed(*, slug: str, user_id: int | None = None, gone=False) -> None:
    """After commit: re-check `room:<slug>` on one user's sockets, or on all."""
    group = user_group(user_id) if user_id is not None else room_group(slug)
    event = {
        "type": StreamEvent.REVOKE.value,
        "stream": room_stream(slug).key,
        "gone": gone,
    }
    transaction.on_commit(lambda: group_send(group, event, fallback=NOT_DELIVERED))
