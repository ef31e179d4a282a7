"""The storage a registry of live sockets writes to: one interface, two stores.

`MemoryStore` serves one process; `RedisStore` several. Every method is one
atomic step (an asyncio step with no await in memory, a Lua script in Redis),
so "first socket of this user on S" and "last one left" are decided once
across processes. Entries are recorded per process id, so the entries of a
process whose heartbeat expired can be found and removed.
"""

import time
from bisect import bisect_left
from collections.abc import Iterable
from typing import Protocol, TypeVar

from realtime.presence.events import (
    ConnectedUser,
    ProcessEntries,
    SessionConnections,
    Snapshot,
    SocketEntry,
    UserConnections,
    name_encode,
    user_part,
)

T = TypeVar("T")

# A leave: (version, user id, username, version of the join that began the
# presence it ends, None when the store does not know it).
Left = tuple[int, int, str, int | None]


class Store(Protocol):
    async def process_register(self, pid: str, *, ttl: float) -> None: ...

    async def process_beat(self, pid: str, *, ttl: float) -> bool:
        """Refresh the heartbeat; False when the store no longer knows `pid`."""

    async def processes_dead(self, pid: str) -> list[str]:
        """Processes, other than `pid`, whose heartbeat expired."""

    async def process_claim(self, dead: str, *, by: str, ttl: float) -> bool:
        """True for exactly one caller: it cleans up after `dead`."""

    async def process_entries(self, pid: str) -> ProcessEntries: ...

    async def process_forget(self, pid: str) -> None: ...

    async def process_reaped(self, pid: str) -> bool:
        """After its entries were removed: forget a dead process, unless it
        recorded more meanwhile (False; the next claim of it reaps those).

        A process taken for dead may only have stalled, and act while it is
        reaped. Its heartbeat is removed either way: back, it registers again
        and rebuilds what it holds, which must then be all it recorded.
        """

    async def socket_add(
        self, pid: str, socket_id: str, entry: SocketEntry
    ) -> None: ...

    async def socket_remove(
        self, pid: str, socket_id: str, entry: SocketEntry
    ) -> None: ...

    async def stream_join(
        self, pid: str, socket_id: str, stream: str, *, user_id: int, username: str
    ) -> int | None:
        """The change's version when this is the user's first socket on `stream`."""

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
        """`stream_join`, then `snapshot`, in one atomic step."""

    async def stream_leave(self, pid: str, socket_id: str, stream: str) -> Left | None:
        """The leave when this was the user's last socket."""

    async def snapshot(
        self, stream: str, *, limit: int, include: int | None = None
    ) -> Snapshot:
        """The first `limit` users by id; cut there, `include` (when on the
        stream) is listed in the last place. `stream_join_read` includes its
        caller so."""

    async def user_connections(self, user_id: int) -> UserConnections: ...

    async def connected_now(self) -> list[ConnectedUser]: ...

    async def close(self) -> None: ...


def clock_version() -> int:
    """Microseconds since the epoch: versions stay increasing across restarts."""
    return time.time_ns() // 1000


def next_version(previous: int) -> int:
    return max(previous + 1, clock_version())


def snapshot_build(
    counts: dict[int, int],
    names: dict[int, str],
    *,
    version: int,
    limit: int,
    include: int | None = None,
) -> Snapshot:
    """The first `limit` users by id (and `include`); `count` is the total."""
    rows = [(uid, names.get(uid, ""), counts[uid]) for uid in sorted(counts)]
    return snapshot_of(rows, version=version, limit=limit, include=include)


def snapshot_of(
    rows: list[tuple[int, str, int]],
    *,
    version: int,
    limit: int,
    include: int | None = None,
) -> Snapshot:
    """A snapshot of (id, username, connections) rows sorted by id: the first
    `limit` of them (and `include`); `count` is always the total."""
    listed = rows
    if len(rows) > limit:
        _, listed = cut_including([row[0] for row in rows], rows, limit, include)
    return Snapshot(
        listed=",".join(user_part(uid, name_encode(n), c) for uid, n, c in listed),
        count=len(rows),
        version=version,
        truncated=len(rows) > limit,
        ids=[uid for uid, _, _ in listed],
    )


def cut_including(
    ids: list[int], items: list[T], limit: int, include: int | None
) -> tuple[list[int], list[T]]:
    """The first `limit` of `items` (sorted by `ids`); user `include`, when
    among them but cut, takes the last place instead.

    A snapshot lists at most `limit` users and includes the socket that
    subscribed (docs/protocol.md §4.4): cut by id alone, a caller whose id
    is above the first `limit` would not see himself. His id is above every
    one kept, so the order by id holds.
    """
    kept_ids, kept = ids[:limit], items[:limit]
    if include is None or not kept or include <= kept_ids[-1]:
        return kept_ids, kept
    i = bisect_left(ids, include)
    if i < len(ids) and ids[i] == include:
        kept_ids[-1], kept[-1] = include, items[i]
    return kept_ids, kept


def connected_build(sockets: Iterable[SocketEntry]) -> list[ConnectedUser]:
    """Sockets → one row per user with his sessions, ordered by user id."""
    per_user: dict[int, dict[str, int]] = {}
    names: dict[int, str] = {}
    for entry in sockets:
        sessions = per_user.setdefault(entry.user_id, {})
        sessions[entry.sid] = sessions.get(entry.sid, 0) + 1
        names[entry.user_id] = entry.username
    return [
        ConnectedUser(
            id=uid,
            username=names[uid],
            connections=sum(sessions.values()),
            sessions=[
                SessionConnections(sid, n) for sid, n in sorted(sessions.items())
            ],
        )
        for uid, sessions in sorted(per_user.items())
    ]


def user_connections_build(sessions: dict[str, int]) -> UserConnections:
    live = {sid: n for sid, n in sessions.items() if n > 0}
    return UserConnections(
        connections=sum(live.values()),
        sessions=[SessionConnections(sid, n) for sid, n in sorted(live.items())],
    )
