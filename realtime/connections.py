"""The sockets this process holds, by session and by user.

Process-local on purpose: the per-user limit is per process (docs/protocol.md §1), and
the revocation watcher must find this process's sockets of a session even
when no channel-layer message reaches it.
"""

from collections import Counter, defaultdict
from typing import Protocol


class LiveSocket(Protocol):
    user_id: int
    sid: str

    async def close_for(self, code: int) -> None: ...


class ConnectionRegistry:
    def __init__(self) -> None:
        self._by_session: dict[str, set[LiveSocket]] = defaultdict(set)
        self._per_user: Counter[int] = Counter()
        self._open = 0

    def add(self, socket: LiveSocket, *, limit: int) -> bool:
        """Register a socket; False (and not registered) when the user is at `limit`."""
        if self._per_user[socket.user_id] >= limit:
            return False
        self._per_user[socket.user_id] += 1
        self._by_session[socket.sid].add(socket)
        self._open += 1
        return True

    def remove(self, socket: LiveSocket) -> None:
        sockets = self._by_session.get(socket.sid)
        if not sockets or socket not in sockets:
            return
        sockets.discard(socket)
        self._open -= 1
        if not sockets:
            del self._by_session[socket.sid]
        self._per_user[socket.user_id] -= 1
        if self._per_user[socket.user_id] <= 0:
            del self._per_user[socket.user_id]

    def of_session(self, sid: str) -> list[LiveSocket]:
        return list(self._by_session.get(sid, ()))

    def count(self, user_id: int) -> int:
        return self._per_user.get(user_id, 0)

    def open_count(self) -> int:
        """Every socket this process holds."""
        return self._open

    def clear(self) -> None:
        """Forget every socket (tests: each runs its own event loop)."""
        self._by_session.clear()
        self._per_user.clear()
        self._open = 0


registry = ConnectionRegistry()
