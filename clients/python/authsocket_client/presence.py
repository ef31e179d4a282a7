"""A client's view of who is on a stream, kept from presence frames.

A snapshot replaces the view (the server may send one unprompted); joins and
leaves are applied idempotently, so a repeated or late one changes nothing.

A snapshot lists at most 1,000 users (`truncated`), while `count` is the
true total. A leave of a user the view does not list then still lowers
`count`, once: the view remembers who left since the snapshot, so the same
leave repeated changes nothing, and a join of that user raises it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from authsocket_client.protocol import is_id


@dataclass(frozen=True)
class PresenceEvent:
    """One presence frame as applied: `kind` is snapshot, join or leave."""

    stream: str
    kind: str
    user: dict[str, Any] | None
    users: tuple[dict[str, Any], ...]  # the view after this event
    count: int
    changed: bool


class PresenceView:
    """Users present on one stream; `count` may exceed `users` when truncated."""

    def __init__(self, stream: str):
        self.stream = stream
        self._users: dict[int, dict[str, Any]] = {}
        # Users who left since the snapshot; kept to count the leave of an
        # unlisted user once in a truncated view.
        self._left: set[Any] = set()
        self.count = 0
        self.truncated = False

    @property
    def users(self) -> tuple[dict[str, Any], ...]:
        return tuple(self._users.values())

    def __contains__(self, user_id: object) -> bool:
        return user_id in self._users

    def apply(self, frame: dict[str, Any]) -> PresenceEvent | None:
        """Apply a `presence`, `presence.join` or `presence.leave` frame."""
        kind = frame.get("type")
        if kind == "presence":
            return self._snapshot(frame)
        user = frame.get("user")
        if not isinstance(user, dict) or not is_id(user.get("id")):
            return None
        user_id = user["id"]
        if kind == "presence.join":
            changed = user_id not in self._users
            if changed:
                self._users[user_id] = {**user, "connections": None}
                self._left.discard(user_id)
                self.count += 1
            return self._event("join", user, changed)
        if kind == "presence.leave":
            if self._users.pop(user_id, None) is not None:
                changed = True
            else:
                # Unlisted: in a truncated view he may be one of the users
                # counted but not listed, unless he already left since.
                changed = self.truncated and user_id not in self._left
            if changed:
                self._left.add(user_id)
                self.count = max(0, self.count - 1)
            return self._event("leave", user, changed)
        return None

    def _snapshot(self, frame: dict[str, Any]) -> PresenceEvent | None:
        users = frame.get("users")
        if not isinstance(users, list):
            return None  # not a snapshot: the view stands
        self._users = {
            u["id"]: dict(u)
            for u in users
            if isinstance(u, dict) and is_id(u.get("id"))
        }
        self._left = set()
        count = frame.get("count")
        self.count = count if isinstance(count, int) else len(self._users)
        self.truncated = bool(frame.get("truncated"))
        return self._event("snapshot", None, True)

    def _event(self, kind: str, user: dict | None, changed: bool) -> PresenceEvent:
        return PresenceEvent(self.stream, kind, user, self.users, self.count, changed)
