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
    replayed_through: int = 0  # live messages up to this id were sent by replay


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
        """Replay sent up to `last_id`: drop live copies of those messages."""
        sub = self._by_key.get(key)
        if sub is not None:
            sub.replayed_through = max(sub.replayed_through, last_id)

    def accepts(self, key: str, message_id: int) -> bool:
        """Live message: subscribed, and not already delivered by replay."""
        sub = self._by_key.get(key)
        return sub is not None and message_id > sub.replayed_through
