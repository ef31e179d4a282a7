"""The stream frames of docs/protocol.md §4.2 and the channel-layer events behind them.

Each function takes the consumer (the dispatch table in realtime.consumers
calls them like its own methods). Rights come from realtime.permissions; an
unknown, malformed or forbidden stream gets the same `forbidden` answer.
"""

import logging

from channels.db import database_sync_to_async
from django.conf import settings

from authsocket import metrics
from realtime.messages import InvalidData, data_check, frame_text
from realtime.permissions import Action, stream_access
from realtime.protocol import (
    UNSUBSCRIBED_FORBIDDEN,
    CloseCode,
    ErrorCode,
    ServerFrame,
)
from realtime.publish import Published, afanout, room_message_store
from realtime.replay import gap_read, replay_read
from realtime.streams import Stream, stream_parse
from realtime.subscriptions import Subscription, SubscriptionSet

logger = logging.getLogger(__name__)

FORBIDDEN_DETAIL = "No such stream, or not allowed."  # one text: nothing leaks


def subscriptions_of(consumer) -> SubscriptionSet:
    """The socket's subscriptions, created on first use (user stream included)."""
    subs = getattr(consumer, "subscriptions", None)
    if subs is None:
        subs = consumer.subscriptions = SubscriptionSet(user_id=consumer.user_id)
    return subs


# --- client frames ---------------------------------------------------------------


async def on_subscribe(consumer, frame: dict) -> None:
    name, since = frame.get("stream"), frame.get("since")
    if not isinstance(name, str) or not _is_message_id(since, optional=True):
        await consumer.send_error(
            ErrorCode.BAD_REQUEST, '"stream" must be a string, "since" an id.', frame
        )
        return
    stream = stream_parse(name, user_id=consumer.user_id)
    if stream is None:
        await _forbidden(consumer, frame)
        return
    subs = subscriptions_of(consumer)
    is_new_room = stream.is_room and subs.get(stream.key) is None
    if is_new_room and subs.room_count() >= settings.AUTHSOCKET_MAX_SUBSCRIPTIONS:
        await consumer.send_error(
            ErrorCode.TOO_MANY_SUBSCRIPTIONS, "Subscription limit reached.", frame
        )
        return
    # Join first, then check and read: a message committed after the read is
    # numbered above `last_id` and delivered live; one at or below it is not.
    if is_new_room and not await _group_add(consumer, stream.group):
        return
    held = subs.get(stream.key)
    replay = await database_sync_to_async(replay_read)(
        user=consumer.user,
        stream=stream,
        since=since,
        held=None if held is None else held.delivered_through,
        limit=settings.AUTHSOCKET_REPLAY_LIMIT,
    )
    if replay is None:  # a subscription already held ends too: the right is gone
        if stream.is_room:
            subs.remove(stream.key)
            await _group_discard(consumer, stream.group)
        await _forbidden(consumer, frame)
        return
    subs.add(stream)
    subs.position(stream.key, replay.position, paused=replay.truncated)
    fields = {"stream": name, "last_id": replay.last_id}
    if replay.reset:
        fields["reset"] = True
    await consumer.send_frame(ServerFrame.SUBSCRIBED, frame, **fields)
    for message in replay.frames:
        await consumer.send(text_data=frame_text(message))
    if replay.truncated:
        await _truncated(consumer, name, replay.position)


async def on_unsubscribe(consumer, frame: dict) -> None:
    """Idempotent; unsubscribing `user` mutes the private stream on this socket."""
    name = frame.get("stream")
    if not isinstance(name, str):
        await consumer.send_error(
            ErrorCode.BAD_REQUEST, '"stream" must be a string.', frame
        )
        return
    stream = stream_parse(name, user_id=consumer.user_id)
    if stream is not None and stream.user_id in (None, consumer.user_id):
        sub = subscriptions_of(consumer).remove(stream.key)
        if sub is not None and stream.is_room:
            await _group_discard(consumer, stream.group)
    await consumer.send_frame(ServerFrame.UNSUBSCRIBED, frame, stream=name)


async def on_publish(consumer, frame: dict) -> None:
    """Store, acknowledge, then fan out: `published` precedes the message."""
    name = frame.get("stream")
    if not isinstance(name, str) or "data" not in frame:
        await consumer.send_error(
            ErrorCode.BAD_REQUEST, 'A publish needs "stream" and "data".', frame
        )
        return
    try:
        data_check(frame["data"])
    except InvalidData as exc:
        await consumer.send_error(ErrorCode.BAD_REQUEST, str(exc), frame)
        return
    stream = stream_parse(name, user_id=consumer.user_id)
    published = await database_sync_to_async(_publish_checked)(
        consumer.user, stream, frame["data"]
    )
    if published is None:
        await _forbidden(consumer, frame)
        return
    await consumer.send_frame(
        ServerFrame.PUBLISHED, frame, stream=name, id=published.message.seq
    )
    await afanout(published)


# --- channel-layer events ---------------------------------------------------------


async def on_stream_message(consumer, event: dict) -> None:
    """A live message (serialized once by the publisher), passed on in id order.

    Processes fan out independently, so 43 can arrive before 42 although 42
    committed first, and a client resuming with `since` = the last id it saw
    would skip 42. Ids follow commit order, so with 43 here 42 is stored: read
    the gap (at most the replay limit; beyond it the client pages with
    `next_since`), send it first, and drop the late live copy when it comes.
    """
    subs, key, message_id = subscriptions_of(consumer), event["stream"], event["id"]
    if not subs.accepts(key, message_id):
        return
    after = subs.gap_before(key, message_id)
    if after is not None:
        limit = settings.AUTHSOCKET_REPLAY_LIMIT
        frames = await database_sync_to_async(gap_read)(
            stream=subs.get(key).stream, after=after, before=message_id, limit=limit
        )
        for frame in frames:
            await consumer.send(text_data=frame_text(frame))
            subs.delivered(key, frame["id"])
        if len(frames) == limit and frames[-1]["id"] < message_id - 1:
            subs.pause(key)
            await _truncated(consumer, key, frames[-1]["id"])
            return
    await consumer.send(text_data=event["text"])
    subs.delivered(key, message_id)
    metrics.message_delivered(key, event.get("ts_ms"))


async def on_stream_revoke(consumer, event: dict) -> None:
    """A right may be gone: re-check this socket's user, end the stream if so."""
    subs = subscriptions_of(consumer)
    sub = subs.get(event["stream"])
    if sub is None or not sub.stream.is_room:
        return
    if not event.get("gone"):
        decision = await database_sync_to_async(stream_access)(
            user=consumer.user, stream=sub.stream, action=Action.READ
        )
        if decision.allowed:
            return
    await _end(consumer, sub)


# --- helpers -----------------------------------------------------------------------


def _is_message_id(value, *, optional: bool) -> bool:
    if value is None:
        return optional
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _publish_checked(user, stream: Stream | None, data) -> Published | None:
    decision = stream_access(user=user, stream=stream, action=Action.PUBLISH)
    if not decision.allowed:
        return None
    return room_message_store(room=decision.room, sender=user, data=data)


async def _truncated(consumer, name: str, next_since: int) -> None:
    """More is stored than one read carries: nothing live until resubscribed."""
    await consumer.send_frame(
        ServerFrame.REPLAY_TRUNCATED, stream=name, next_since=next_since
    )


async def _end(consumer, sub: Subscription) -> None:
    subscriptions_of(consumer).remove(sub.stream.key)
    await _group_discard(consumer, sub.stream.group)
    await consumer.send_frame(
        ServerFrame.UNSUBSCRIBED, stream=sub.stream.key, reason=UNSUBSCRIBED_FORBIDDEN
    )


async def _forbidden(consumer, frame: dict) -> None:
    await consumer.send_error(ErrorCode.FORBIDDEN, FORBIDDEN_DETAIL, frame)


async def _group_add(consumer, group: str) -> bool:
    """Join a room group; the disconnect handler leaves it with the others."""
    try:
        await consumer.channel_layer.group_add(group, consumer.channel_name)
    except Exception as exc:
        metrics.channel_layer_error("group_add")
        # daphne cannot send 1011; 4503 tells the client exactly what to do:
        # reconnect with backoff and resubscribe with `since`.
        logger.warning("channel layer unavailable on subscribe: %s", type(exc).__name__)
        await consumer.close(code=CloseCode.SHUTTING_DOWN)
        return False
    consumer.groups_joined.append(group)
    return True


async def _group_discard(consumer, group: str) -> None:
    if group in consumer.groups_joined:
        consumer.groups_joined.remove(group)
    try:
        await consumer.channel_layer.group_discard(group, consumer.channel_name)
    except Exception:  # the layer expires stale members by itself
        metrics.channel_layer_error("group_discard")
        logger.warning("channel layer unavailable on unsubscribe")
