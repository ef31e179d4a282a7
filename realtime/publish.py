"""Server-side publishing: store a message, then fan it out (docs/protocol.md §4.2).

Every writer goes through here: the consumer, the REST views, the admin and
`manage.py notify`. A message is numbered and stored in one transaction (the
stream's counter row is locked by the UPDATE, so numbers follow commit order),
and only after commit is it sent, as ONE `group_send` to the stream's group
with its frame already serialized, so fan-out costs no per-socket encoding.
If the channel layer is down the message stays stored for replay.
"""

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import F

from core import metrics
from realtime.broadcast import agroup_send, group_send
from realtime.lost_rows import lost_rows_check
from realtime.messages import data_check, frame_text, message_frame
from realtime.models import Message, Room, StreamCounter
from realtime.protocol import StreamEvent
from realtime.streams import Stream, room_stream, stream_parse, user_stream

LIVE_DELIVERY_FAILED = "message stored for replay, live delivery failed"


@dataclass(frozen=True, slots=True)
class Published:
    """A numbered message and the one channel-layer event that delivers it."""

    message: Message
    group: str
    event: dict


def message_store(*, stream: Stream, sender, data, keep: bool = False) -> Published:
    """Number a message and store it (if its kind keeps history, or `keep`).

    Fan-out is the caller's next step. A kind without history still numbers
    its messages: the counter moves, the row is never written. `UserGone`
    when the sender was deleted since the caller read it.
    """
    data_check(data)
    try:
        with transaction.atomic():
            seq = _next_seq(stream.name)
            message = Message(stream=stream.name, seq=seq, sender=sender, data=data)
            if stream.keeps_history or keep:
                message.save(force_insert=True)
    except IntegrityError:
        lost_rows_check(user=sender)
        raise
    return _published(message, stream)


def _next_seq(name: str) -> int:
    """Increment the stream's counter (made on first use); locked until commit."""
    counters = StreamCounter.objects.filter(pk=name)
    if not counters.update(last_message_id=F("last_message_id") + 1):
        StreamCounter.objects.bulk_create(
            [StreamCounter(stream=name)], ignore_conflicts=True
        )
        counters.update(last_message_id=F("last_message_id") + 1)
    return counters.values_list("last_message_id", flat=True).get()


def _published(message: Message, stream: Stream) -> Published:
    event = {
        "type": StreamEvent.MESSAGE.value,
        "stream": stream.label,
        "id": message.seq,
        "text": frame_text(message_frame(message)),
        "ts_ms": int(message.created_at.timestamp() * 1000),  # fan-out delay
    }
    return Published(message, stream.group, event)


# --- fan-out -------------------------------------------------------------------


def fanout(published: Published) -> None:
    """Deliver live from sync code (best effort: the message is stored)."""
    metrics.message_published(published.event["stream"])
    group_send(published.group, published.event, fallback=LIVE_DELIVERY_FAILED)


async def afanout(published: Published) -> None:
    """Deliver live from async code, on the caller's event loop."""
    metrics.message_published(published.event["stream"])
    await agroup_send(published.group, published.event, fallback=LIVE_DELIVERY_FAILED)


# --- the API -------------------------------------------------------------------


def stream_publish_to(
    *, stream: Stream, data, sender=None, keep: bool = False
) -> Message:
    """Store, then deliver after the outermost transaction commits."""
    published = message_store(stream=stream, sender=sender, data=data, keep=keep)
    transaction.on_commit(lambda: fanout(published))
    return published.message


def stream_publish(*, name: str, data, sender=None) -> Message:
    """`stream_publish_to` by full name (`doc:7`); ValueError if no kind owns it."""
    stream = stream_parse(name, user_id=None)
    if stream is None:
        raise ValueError(f"No stream kind owns the name {name!r}.")
    return stream_publish_to(stream=stream, data=data, sender=sender)


def publish_to_room(*, room: Room, sender, data) -> Message:
    return stream_publish_to(stream=room_stream(room.slug), data=data, sender=sender)


def publish_to_user(*, user, data, sender=None) -> Message:
    """On `user`'s private stream."""
    return stream_publish_to(stream=user_stream(user.pk), data=data, sender=sender)
