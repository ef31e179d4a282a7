"""The stream frames of docs/protocol.md §4.2 and the channel-layer events behind them.

`StreamSubscriptions` is the one owner of a socket's streams: what it is
subscribed to (and where each replay left it, realtime.subscriptions). The
consumer holds one and hands it the stream frames and events; it gives back
only sending and joining or leaving groups. Rights come from realtime.permissions; an unknown, malformed or
forbidden stream gets the same `forbidden` answer. Field types were checked
before (realtime.frame_fields).
"""

import logging

from channels.db import database_sync_to_async
from django.conf import settings

from core import metrics
from realtime.lost_rows import UserGone
from realtime.messages import InvalidData, data_check, frame_text
from realtime.permissions import Action, stream_access
from realtime.presence_frames import StreamPresence
from realtime.protocol import (
    UNSUBSCRIBED_FORBIDDEN,
    ErrorCode,
    ServerFrame,
)
from realtime.publish import Published, afanout, message_store
from realtime.replay import gap_read, replay_read
from realtime.streams import Stream, stream_label, stream_parse
from realtime.subscriptions import Subscription, SubscriptionSet

logger = logging.getLogger(__name__)

FORBIDDEN_DETAIL = "No such stream, or not allowed."  # one text: nothing leaks
NO_HISTORY_DETAIL = 'This stream keeps no history: subscribe without "since".'


class StreamSubscriptions:
    """One socket's streams: subscriptions, positions and the groups behind them.

    `socket` is the consumer: `send_frame`, `send_error`, `send`, `group_join`
    and `group_leave` (groups it leaves by itself on close) are all this uses.
    """

    def __init__(self, *, socket, user) -> None:
        self.socket = socket
        self.user = user
        self.subs = SubscriptionSet(user_id=user.pk)
        self.presence = StreamPresence(socket=socket, user=user)

    # --- client frames -----------------------------------------------------------

    async def subscribe(self, frame: dict) -> None:
        name, since = frame["stream"], frame.get("since")
        wanted = frame.get("presence") is True
        stream = stream_parse(name, user_id=self.user.pk)
        if stream is None or (wanted and not stream.keeps_presence):
            await self._forbidden(frame)
            return
        if since is not None and not stream.keeps_history:
            await self.socket.send_error(
                ErrorCode.BAD_REQUEST, NO_HISTORY_DETAIL, frame
            )
            return
        is_new = not stream.is_user and self.subs.get(stream.label) is None
        if is_new and self.subs.counted() >= settings.AUTHSOCKET_MAX_SUBSCRIPTIONS:
            await self.socket.send_error(
                ErrorCode.TOO_MANY_SUBSCRIPTIONS, "Subscription limit reached.", frame
            )
            return
        # Join first, then check and read: a message committed after the read is
        # numbered above `last_id` and delivered live; one at or below it is not.
        if is_new and not await self._group_add(stream.group):
            return
        if stream.keeps_presence and not await self.presence.watch(
            stream, wanted=wanted
        ):
            return
        # Held already, the replay is what this `since` asks for above the ids
        # the socket was sent. Live messages wait behind this handler; once
        # `position` below is set, a live copy of a replayed id is dropped.
        replay = await database_sync_to_async(replay_read)(
            user=self.user,
            stream=stream,
            since=since,
            sent=self.subs.sent_through(stream.label),
            unsent_below=self.subs.unsent_below(stream.label),
            limit=settings.AUTHSOCKET_REPLAY_LIMIT,
        )
        if replay is None:  # a subscription already held ends too: the right is gone
            if not stream.is_user:
                self.subs.remove(stream.label)
                await self._group_discard(stream.group)
            if stream.keeps_presence:
                await self.presence.ended(stream)
            await self._forbidden(frame)
            return
        self.subs.add(stream)
        if stream.keeps_presence:
            await self.presence.subscribed(stream)
        self.subs.position(stream.label, replay.position, paused=replay.truncated)
        fields = {"stream": name, "last_id": replay.last_id}
        if replay.reset:
            fields["reset"] = True
        await self.socket.send_frame(ServerFrame.SUBSCRIBED, frame, **fields)
        for message in replay.frames:
            await self.socket.send(text_data=frame_text(message))
            self.subs.delivered(stream.label, message["id"])
        if replay.truncated:
            await self._truncated(name, replay.position)
        if stream.keeps_presence:
            await self.presence.snapshot_send(stream)

    async def unsubscribe(self, frame: dict) -> None:
        """Idempotent; unsubscribing `user` mutes the private stream on this socket."""
        name = frame["stream"]
        stream = stream_parse(name, user_id=self.user.pk)
        own = stream is not None and (
            not stream.is_user or stream.key == str(self.user.pk)
        )
        if own:
            sub = self.subs.remove(stream.label)
            if sub is not None and not stream.is_user:
                await self._group_discard(stream.group)
            if sub is not None and stream.keeps_presence:
                await self.presence.ended(stream)
        await self.socket.send_frame(ServerFrame.UNSUBSCRIBED, frame, stream=name)

    async def publish(self, frame: dict) -> None:
        """Store, acknowledge, then fan out: `published` precedes the message."""
        name = frame["stream"]
        try:
            data_check(frame["data"])
        except InvalidData as exc:
            await self.socket.send_error(ErrorCode.BAD_REQUEST, str(exc), frame)
            return
        stream = stream_parse(name, user_id=self.user.pk)
        published = await database_sync_to_async(_publish_checked)(
            self.user, stream, frame["data"]
        )
        if published is None:
            await self._forbidden(frame)
            return
        await self.socket.send_frame(
            ServerFrame.PUBLISHED, frame, stream=name, id=published.message.seq
        )
        await afanout(published)

    async def presence_requested(self, frame: dict) -> None:
        """A snapshot of any stream the user may read, subscribed or not."""
        if not await self.presence.requested(frame):
            await self._forbidden(frame)

    # --- channel-layer events ----------------------------------------------------

    async def message_arrived(self, event: dict) -> None:
        """A live message (serialized once by the publisher), passed on in id order.

        Processes fan out independently, so 43 can arrive before 42 although 42
        committed first, and a client resuming with `since` = the last id it saw
        would skip 42. Ids follow commit order, so with 43 here 42 is stored: read
        the gap (at most the replay limit; beyond it the client pages with
        `next_since`), send it first, and drop the late live copy when it comes.
        A kind without history has no gap to read: its late copy is dropped.
        """
        subs, key, message_id = self.subs, event["stream"], event["id"]
        if not subs.accepts(key, message_id):
            return
        after = subs.gap_before(key, message_id)
        stream = subs.get(key).stream
        if after is not None and stream.keeps_history:
            limit = settings.AUTHSOCKET_REPLAY_LIMIT
            frames = await database_sync_to_async(gap_read)(
                stream=stream, after=after, before=message_id, limit=limit
            )
            for frame in frames:
                await self.socket.send(text_data=frame_text(frame))
                subs.delivered(key, frame["id"])
            if len(frames) == limit and frames[-1]["id"] < message_id - 1:
                subs.pause(key)
                await self._truncated(key, frames[-1]["id"])
                return
        await self.socket.send(text_data=event["text"])
        subs.delivered(key, message_id)
        metrics.message_delivered(key, event.get("ts_ms"))

    async def rights_changed(self, event: dict) -> None:
        """A right may be gone: re-check this socket's user, end the stream if so."""
        sub = self.subs.get(stream_label(event["stream"]))
        if sub is None or sub.stream.is_user:
            return
        if not event.get("gone"):
            decision = await database_sync_to_async(stream_access)(
                user=self.user, stream=sub.stream, action=Action.READ
            )
            if decision.allowed:
                return
        await self._end(sub)

    # --- helpers -----------------------------------------------------------------

    async def _truncated(self, name: str, next_since: int) -> None:
        """More is stored than one read carries: nothing live until resubscribed."""
        await self.socket.send_frame(
            ServerFrame.REPLAY_TRUNCATED, stream=name, next_since=next_since
        )

    async def _end(self, sub: Subscription) -> None:
        self.subs.remove(sub.stream.label)
        await self._group_discard(sub.stream.group)
        if sub.stream.keeps_presence:
            await self.presence.ended(sub.stream)
        await self.socket.send_frame(
            ServerFrame.UNSUBSCRIBED,
            stream=sub.stream.label,
            reason=UNSUBSCRIBED_FORBIDDEN,
        )

    async def _forbidden(self, frame: dict) -> None:
        await self.socket.send_error(ErrorCode.FORBIDDEN, FORBIDDEN_DETAIL, frame)

    async def _group_add(self, group: str) -> bool:
        """Join a stream's group through the socket (left when it closes)."""
        return await self.socket.group_join(group)

    async def _group_discard(self, group: str) -> None:
        await self.socket.group_leave(group)


def _publish_checked(user, stream: Stream | None, data) -> Published | None:
    """The stored message; None when the user may not publish there, or was
    deleted while it was stored (the socket closes 4403 next)."""
    decision = stream_access(user=user, stream=stream, action=Action.PUBLISH)
    if not decision.allowed:
        return None
    try:
        return message_store(stream=stream, sender=user, data=data)
    except UserGone:
        return None
