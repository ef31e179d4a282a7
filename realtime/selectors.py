"""Read-only queries of streams: history pages and the rooms a user may read."""

from django.db.models import Exists, OuterRef, Q, QuerySet

from realtime.models import Membership, Message, Room, StreamCounter
from realtime.streams import Stream


def stream_messages(*, stream: Stream) -> QuerySet:
    """All stored messages of one stream, sender preloaded."""
    return Message.objects.select_related("sender").filter(stream=stream.name)


def messages_after(*, stream: Stream, after: int, limit: int) -> list[Message]:
    """Up to `limit` messages numbered above `after`, oldest first."""
    return list(
        stream_messages(stream=stream).filter(seq__gt=after).order_by("seq")[:limit]
    )


def messages_between(
    *, stream: Stream, after: int, through: int, limit: int
) -> list[Message]:
    """Up to `limit` messages numbered in (`after`, `through`], oldest first."""
    messages = stream_messages(stream=stream).filter(seq__gt=after, seq__lte=through)
    return list(messages.order_by("seq")[:limit])


def stream_last_id(*, stream: Stream) -> int:
    """The id of the stream's latest message (0 if none), from its counter row."""
    counters = StreamCounter.objects.filter(pk=stream.name)
    return counters.values_list("last_message_id", flat=True).first() or 0


def messages_latest(*, stream: Stream, limit: int) -> list[Message]:
    """The newest `limit` messages, oldest first."""
    newest = list(stream_messages(stream=stream).order_by("-seq")[:limit])
    return newest[::-1]


def rooms_readable(*, user) -> QuerySet:
    """Public rooms and the private rooms the user is in, with `is_member`."""
    return (
        Room.objects.annotate(
            is_member=Exists(Membership.objects.filter(room=OuterRef("pk"), user=user))
        )
        .filter(Q(public=True) | Q(is_member=True))
        .order_by("slug")
    )
