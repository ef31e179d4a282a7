"""The store of one process (no `REDIS_URL`): dictionaries, no awaits inside.

Each method runs to completion without yielding, which makes it atomic for
every asyncio task of the process. Several registries may share one
`MemoryStore` (tests simulate several processes that way), so it keeps the
same per-process records and heartbeats as the Redis store.
"""

import time
from bisect import bisect_left
from collections import Counter, defaultdict

from realtime.presence.events import (
    ConnectedUser,
    PresentUser,
    ProcessEntries,
    Snapshot,
    SocketEntry,
    UserConnections,
    name_encode,
    user_part,
)
from realtime.presence.store import (
    Left,
    connected_build,
    cut_including,
    next_version,
    user_connections_build,
)


class MemoryStore:
    def __init__(self) -> None:
        self._beats: dict[str, float] = {}  # pid → monotonic expiry
        self._claims: dict[str, float] = {}
        self._entries: dict[str, ProcessEntries] = defaultdict(ProcessEntries)
        # Each stream's users by id with their names and sockets: the one
        # record of who is on it, kept as snapshots list them (every subscribe
        # with presence reads one, so it is not sorted per read), with each
        # user's id and part of the snapshot frame beside it, at the same
        # index (the ids are what `_count` searches and snapshots carry).
        self._ids: dict[str, list[int]] = defaultdict(list)
        self._listed: dict[str, list[PresentUser]] = defaultdict(list)
        self._parts: dict[str, list[str]] = defaultdict(list)
        self._versions: dict[str, int] = {}
        self._joined: dict[str, dict[int, int]] = defaultdict(dict)  # join versions
        self._sessions: dict[int, Counter[str]] = defaultdict(Counter)

    async def process_register(self, pid: str, *, ttl: float) -> None:
        self._beats[pid] = time.monotonic() + ttl

    async def process_beat(self, pid: str, *, ttl: float) -> bool:
        if not self._alive(pid):
            return False
        self._beats[pid] = time.monotonic() + ttl
        return True

    async def processes_dead(self, pid: str) -> list[str]:
        known = set(self._beats) | set(self._entries)
        return sorted(
            other for other in known if other != pid and not self._alive(other)
        )

    async def process_claim(self, dead: str, *, by: str, ttl: float) -> bool:
        now = time.monotonic()
        if self._claims.get(dead, 0) > now:
            return False
        self._claims[dead] = now + ttl
        return True

    async def process_entries(self, pid: str) -> ProcessEntries:
        entries = self._entries.get(pid)
        if entries is None:
            return ProcessEntries()
        return ProcessEntries(dict(entries.sockets), dict(entries.streams))

    async def process_forget(self, pid: str) -> None:
        self._beats.pop(pid, None)
        self._entries.pop(pid, None)

    async def process_reaped(self, pid: str) -> bool:
        self._beats.pop(pid, None)
        entries = self._entries.get(pid)
        if entries is not None and (entries.sockets or entries.streams):
            return False
        self._entries.pop(pid, None)
        return True

    async def socket_add(self, pid: str, socket_id: str, entry: SocketEntry) -> None:
        sockets = self._entries[pid].sockets
        if socket_id not in sockets:
            sockets[socket_id] = entry
            self._sessions[entry.user_id][entry.sid] += 1

    async def socket_remove(self, pid: str, socket_id: str, entry: SocketEntry) -> None:
        entries = self._entries.get(pid)
        stored = entries.sockets.pop(socket_id, None) if entries else None
        if stored is None:
            return
        sessions = self._sessions[stored.user_id]
        sessions[stored.sid] -= 1
        if sessions[stored.sid] <= 0:
            del sessions[stored.sid]
        if not sessions:
            del self._sessions[stored.user_id]

    async def stream_join(
        self, pid: str, socket_id: str, stream: str, *, user_id: int, username: str
    ) -> int | None:
        return self._join(pid, socket_id, stream, user_id, username)

    async def stream_join_read(
        self,
        pid: str,
        socket_id: str,
        stream: str,
        *,
        user_id: int,
        username: str,
        limit: int,
    ) -> tuple[int | None, Snapshot]:
        version = self._join(pid, socket_id, stream, user_id, username)
        return version, self._snapshot(stream, limit, include=user_id)

    async def stream_leave(self, pid: str, socket_id: str, stream: str) -> Left | None:
        entries = self._entries.get(pid)
        user_id = entries.streams.pop((socket_id, stream), None) if entries else None
        if user_id is None:
            return None
        connections, username = self._count(stream, user_id, -1)
        if connections > 0:
            return None
        joined = self._joined[stream].pop(user_id, None)
        if not self._joined[stream]:
            del self._joined[stream]
        return self._bump(stream), user_id, username, joined

    async def snapshot(
        self, stream: str, *, limit: int, include: int | None = None
    ) -> Snapshot:
        return self._snapshot(stream, limit, include=include)

    async def user_connections(self, user_id: int) -> UserConnections:
        return user_connections_build(dict(self._sessions.get(user_id, {})))

    async def connected_now(self) -> list[ConnectedUser]:
        return connected_build(
            entry
            for entries in self._entries.values()
            for entry in entries.sockets.values()
        )

    async def close(self) -> None:
        pass

    def _join(
        self, pid: str, socket_id: str, stream: str, user_id: int, username: str
    ) -> int | None:
        streams = self._entries[pid].streams
        if (socket_id, stream) in streams:
            return None
        streams[socket_id, stream] = user_id
        connections, _ = self._count(stream, user_id, +1, username)
        if connections > 1:
            return None
        version = self._joined[stream][user_id] = self._bump(stream)
        return version

    def _snapshot(self, stream: str, limit: int, include: int | None) -> Snapshot:
        """The first `limit` users by id; cut there, user `include` (when on
        the stream) takes the last place: see `store.cut_including`."""
        parts, ids = self._parts.get(stream, []), self._ids.get(stream, [])
        count = len(parts)
        if count > limit:
            ids, parts = cut_including(ids, parts, limit, include)
        return Snapshot(
            listed=",".join(parts),
            count=count,
            version=self._versions.get(stream, 0),
            truncated=count > limit,
            ids=ids[:],  # a copy: the store's list changes
        )

    def _alive(self, pid: str) -> bool:
        return self._beats.get(pid, 0) > time.monotonic()

    def _count(
        self, stream: str, user_id: int, delta: int, username: str | None = None
    ) -> tuple[int, str]:
        """Add `delta` to the user's sockets on `stream`, in its sorted list.

        Returns his sockets there now and his username (`username`, or the
        one listed when None); a stream nobody is on is forgotten.
        """
        ids, listed, parts = (
            self._ids[stream],
            self._listed[stream],
            self._parts[stream],
        )
        i = bisect_left(ids, user_id)
        here = i < len(ids) and ids[i] == user_id
        before = listed[i] if here else PresentUser(user_id, "", 0)
        username = before.username if username is None else username
        connections = before.connections + delta
        if connections > 0:
            entry = PresentUser(user_id, username, connections)
            part = user_part(user_id, name_encode(username), connections)
            if here:
                listed[i], parts[i] = entry, part
            else:
                ids.insert(i, user_id)
                listed.insert(i, entry)
                parts.insert(i, part)
        elif here:
            del ids[i], listed[i], parts[i]
        if not ids:
            del self._ids[stream], self._listed[stream], self._parts[stream]
        return connections, username

    def _bump(self, stream: str) -> int:
        version = next_version(self._versions.get(stream, 0))
        self._versions[stream] = version
        return version
