"""A client's view of who is on a stream, kept from presence frames.

A snapshot replaces the view (the server may send one unprompted); joins and
leaves are applied idempotently, so a repeated or late one changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
        if not isinstance(user, dict) or "id" not in user:
            return None
        if kind == "presence.join":
            changed = user["id"] not in self._users
            if changed:
                self._users[user["id"]] = {**user, "connections": None}
                self.count += 1
            return self._event("join", user, changed)
        if kind == "presence.leave":
            changed = self._users.pop(user["id"], None) is not None
            if changed:
                self.count = max(0, self.count - 1)
            return self._event("leave", user, changed)
        return None

    def _snapshot(self, frame: dict[str, Any]) -> PresenceEvent:
        users = [u for u in frame.get("users") or () if isinstance(u, dict)]
        self._users = {u["id"]: dict(u) for u in users if "id" in u}
        count = frame.get("count")
        self.count = count if isinstance(count, int) else len(self._users)
        self.truncated = bool(frame.get("truncated"))
        return self._event("snapshot", None, True)

    def _event(self, kind: str, user: dict | None, changed: bool) -> PresenceEvent:
        return PresenceEvent(self.stream, kind, user, self.users, self.count, changed)
