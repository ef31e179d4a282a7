"""Server-side publishing: store a message, then fan it out (docs/protocol.md §4.2).

Every writer goes through here: the consumer, the REST views, the admin and
`manage.py notify`. A message is numbered and stored in one transaction (the
stream's counter row is locked by the UPDATE, so numbers follow commit order),
and only after commit is it sent, as ONE `group_send` to the stream's group
with its frame already serialized, so fan-out costs no per-socket encoding.
If the channel layer is down the message stays stored for replay.
"""

from dataclasses import dataclass

from django.db import transaction
from django.db.models import F

from authsocket import metrics
from realtime.broadcast import agroup_send, group_send
from realtime.messages import data_check, frame_text, message_frame
from realtime.models import Message, Room, UserStream
from realtime.protocol import StreamEvent
from realtime.streams import Stream, room_stream, user_stream

LIVE_DELIVERY_FAILED = "message stored for replay, live delivery failed"


@dataclass(frozen=True, slots=True)
class Published:
    """A stored message and the one channel-layer event that delivers it."""

    message: Message
    group: str
    event: dict


def room_message_store(*, room: Room, sender, data) -> Published:
    """Number and store a room message; fan-out is the caller's next step."""
    data_check(data)
    with transaction.atomic():
        seq = _next_seq(Room, room.pk)
        message = Message.objects.create(room=room, seq=seq, sender=sender, data=data)
    return _published(message, room_stream(room.slug))


def user_message_store(*, user, data, sender=None) -> Published:
    """Number and store a message on `user`'s private stream."""
    data_check(data)
    with transaction.atomic():
        if not UserStream.objects.filter(pk=user.pk).exists():
            UserStream.objects.bulk_create(
                [UserStream(user_id=user.pk)], ignore_conflicts=True
            )
        seq = _next_seq(UserStream, user.pk)
        message = Message.objects.create(
            recipient=user, seq=seq, sender=sender, data=data
        )
    return _published(message, user_stream(user.pk))


def _next_seq(model, pk) -> int:
    """Increment the stream's counter; the row stays locked until commit."""
    model.objects.filter(pk=pk).update(last_message_id=F("last_message_id") + 1)
    return model.objects.filter(pk=pk).values_list("last_message_id", flat=True).get()


def _published(message: Message, stream: Stream) -> Published:
    event = {
        "type": StreamEvent.MESSAGE.value,
        "stream": stream.key,
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


def publish_to_room(*, room: Room, sender, data) -> Message:
    """Store, then deliver after the outermost transaction commits."""
    published = room_message_store(room=room, sender=sender, data=data)
    transaction.on_commit(lambda: fanout(published))
    return published.message


def publish_to_user(*, user, data, sender=None) -> Message:
    """Store on `user`'s private stream, then deliver after commit."""
    published = user_message_store(user=user, data=data, sender=sender)
    transaction.on_commit(lambda: fanout(published))
    return published.message
