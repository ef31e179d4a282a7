"""One socket's subscriptions, and which live messages it should pass on.

Kept apart from the consumer so the rules are plain code: the user stream is
subscribed from the start (it can be muted by `unsubscribe` and resumed), room
subscriptions count against the limit, and a live message is passed on only
for a stream still subscribed and only if replay has not already sent it.
"""

from dataclasses import dataclass

from realtime.streams import Stream, user_stream


@dataclass(slots=True)
class Subscription:
    stream: Stream
    # Highest id passed on for this stream, by replay or live, in order. None
    # until known (subscribed without `since`: the first live message sets it).
    delivered_through: int | None = None


class SubscriptionSet:
    def __init__(self, *, user_id: int) -> None:
        own = user_stream(user_id)
        self._by_key: dict[str, Subscription] = {own.key: Subscription(own)}

    def get(self, key: str) -> Subscription | None:
        return self._by_key.get(key)

    def add(self, stream: Stream) -> Subscription:
        """Subscribe (idempotent: an existing subscription keeps its state)."""
        return self._by_key.setdefault(stream.key, Subscription(stream))

    def remove(self, key: str) -> Subscription | None:
        return self._by_key.pop(key, None)

    def room_count(self) -> int:
        return sum(1 for sub in self._by_key.values() if sub.stream.is_room)

    def replayed(self, key: str, last_id: int) -> None:
        """The client has everything up to `last_id` (replayed, or its `since`)."""
        self.delivered(key, last_id)

    def delivered(self, key: str, message_id: int) -> None:
        sub = self._by_key.get(key)
        if sub is None:
            return
        if sub.delivered_through is None or sub.delivered_through < message_id:
            sub.delivered_through = message_id

    def accepts(self, key: str, message_id: int) -> bool:
        """Live message: subscribed, and not already passed on."""
        sub = self._by_key.get(key)
        if sub is None:
            return False
        return sub.delivered_through is None or message_id > sub.delivered_through

    def gap_before(self, key: str, message_id: int) -> int | None:
        """The last id passed on, when messages between it and `message_id` are missing."""
        sub = self._by_key.get(key)
        if sub is None or sub.delivered_through is None:
            return None
        return sub.delivered_through if message_id > sub.delivered_through + 1 else None
