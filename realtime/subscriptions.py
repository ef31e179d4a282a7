"""One socket's subscriptions, and which live messages it should pass on.

Kept apart from the socket so the rules are plain code: the user stream is
subscribed from the start (it can be muted by `unsubscribe` and resumed),
every other subscription counts against the limit, and a live message is passed on only
for a stream still subscribed, not paused by a truncated replay, and only if
its id is above every id already passed on (ids per stream strictly increase).
"""

from dataclasses import dataclass

from realtime.streams import Stream, user_stream


@dataclass(slots=True)
class Subscription:
    stream: Stream
    # Highest id the client has for this stream (passed on, or its position
    # set by `subscribe`). None until known: the user stream before any
    # `subscribe`, where the first live message sets it.
    delivered_through: int | None = None
    # Highest id actually sent to the client (replayed or live), 0 for none.
    # A `subscribe` to the stream held replays from above it whatever its
    # `since` says: per socket and stream, ids never repeat (§4.2). Unlike
    # `delivered_through` it never counts a `last_id` the client was only told.
    sent_through: int = 0
    # After `replay.truncated` nothing live is passed on until the client
    # subscribes again with `next_since`: the server never fills a gap itself.
    paused: bool = False
    # The first id sent live while the position was unknown (the user stream,
    # before its `subscribe`): the ids below it were never sent on this
    # socket, and can no longer be, since ids only go up. 0 for none.
    unsent_below: int = 0


class SubscriptionSet:
    def __init__(self, *, user_id: int) -> None:
        own = user_stream(user_id)
        # By the name subscribers see (`Stream.label`): live events carry it.
        self._by_key: dict[str, Subscription] = {own.label: Subscription(own)}

    def get(self, key: str) -> Subscription | None:
        return self._by_key.get(key)

    def add(self, stream: Stream) -> Subscription:
        """Subscribe (idempotent: an existing subscription keeps its state)."""
        return self._by_key.setdefault(stream.label, Subscription(stream))

    def remove(self, key: str) -> Subscription | None:
        return self._by_key.pop(key, None)

    def counted(self) -> int:
        """Subscriptions held against the limit: all but the own user stream."""
        return sum(1 for sub in self._by_key.values() if not sub.stream.is_user)

    def position(self, key: str, last_id: int, *, paused: bool = False) -> None:
        """Set where the client stands after a `subscribe` and its replay."""
        sub = self._by_key.get(key)
        if sub is not None:
            sub.delivered_through, sub.paused = last_id, paused

    def pause(self, key: str) -> None:
        sub = self._by_key.get(key)
        if sub is not None:
            sub.paused = True

    def delivered(self, key: str, message_id: int) -> None:
        """A message was sent to the client, live or replayed."""
        sub = self._by_key.get(key)
        if sub is None:
            return
        if sub.delivered_through is None:
            sub.unsent_below = message_id
        if sub.delivered_through is None or sub.delivered_through < message_id:
            sub.delivered_through = message_id
        sub.sent_through = max(sub.sent_through, message_id)

    def sent_through(self, key: str) -> int:
        """The highest id sent on `key` (0: none, or not subscribed)."""
        sub = self._by_key.get(key)
        return 0 if sub is None else sub.sent_through

    def unsent_below(self, key: str) -> int:
        """Ids under this one were never sent on `key`, nor can be (0: none)."""
        sub = self._by_key.get(key)
        return 0 if sub is None else sub.unsent_below

    def accepts(self, key: str, message_id: int) -> bool:
        """Live message: subscribed, not paused, and not already passed on."""
        sub = self._by_key.get(key)
        if sub is None or sub.paused:
            return False
        return sub.delivered_through is None or message_id > sub.delivered_through

    def gap_before(self, key: str, message_id: int) -> int | None:
        """The last id passed on, when messages between it and `message_id` are missing."""
        sub = self._by_key.get(key)
        if sub is None or sub.delivered_through is None:
            return None
        return sub.delivered_through if message_id > sub.delivered_through + 1 else None
