"""The registry of live sockets, on every process: presence, counts, "connected now".

One `SocketRegistry` per process, over a shared store (`MemoryStore` for one
process, `RedisStore` for several). It also keeps what THIS process holds, so
that it can answer from it in an outage and write it back when the store
forgot (Redis restarted) or missed calls (Redis was unreachable).

Changes caused by a call are returned to the caller, who broadcasts them.
Changes nobody called for (a dead process cleaned up, the shared state
rebuilt) go to `on_change(events)`.

Background work, one task: every `tick` the process refreshes its heartbeat
(TTL `AUTHSOCKET_PRESENCE_TTL`), rebuilds its entries if the store lost them
or missed calls, and looks for processes whose heartbeat expired; one live
process claims each dead one and removes its entries, emitting the leaves.
"""

import asyncio
import logging
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from redis.exceptions import RedisError

from realtime.presence.events import (
    Change,
    ConnectedUser,
    PresenceChange,
    PresenceEvent,
    Resync,
    Snapshot,
    SocketEntry,
    UserConnections,
)
from realtime.presence.store import (
    Left,
    Store,
    clock_version,
    connected_build,
    snapshot_build,
    user_connections_build,
)
from realtime.protocol import PRESENCE_SNAPSHOT_LIMIT

logger = logging.getLogger(__name__)

OUTAGE_ERRORS = (RedisError, OSError)  # OSError covers ConnectionError, TimeoutError
TICK_MAX = (
    0.5  # seconds: a dead process is noticed this long after its heartbeat expired
)
STOP_WAIT = 5.0  # seconds `stop` waits for the heartbeat's last round to end

OnChange = Callable[[list[PresenceEvent]], Awaitable[None]]


class UnknownSocket(LookupError):
    """`stream_join` for a socket that `socket_open` did not register."""


class SocketRegistry:
    def __init__(
        self,
        store: Store,
        *,
        ttl: float,
        process_id: str | None = None,
        on_change: OnChange | None = None,
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.tick = min(TICK_MAX, ttl / 3)
        self.process_id = process_id or secrets.token_hex(8)
        self.on_change = on_change
        self._sockets: dict[str, SocketEntry] = {}
        self._streams: dict[str, set[str]] = {}  # socket id → its streams
        self._here: dict[str, dict[int, int]] = {}  # stream → user → sockets here
        self._locks: dict[str, asyncio.Lock] = {}
        self._shared_reads: dict[str, asyncio.Future] = {}  # stream → snapshot
        self._degraded = False
        self._ticker: asyncio.Task | None = None

    @property
    def degraded(self) -> bool:
        """True while the store is unreachable and answers come from this process."""
        return self._degraded

    # --- lifecycle ----------------------------------------------------------

    async def start(self, *, on_change: OnChange | None = None) -> None:
        """Register this process and start its heartbeat and the dead-process scan.

        The first scan runs now: what this process answers once started (an
        HTTP read may be its first use) leaves out processes already dead.
        Idempotent; a later call may set `on_change`.
        """
        if on_change is not None:
            self.on_change = on_change
        if self._ticker is not None:
            return
        self._ticker = asyncio.create_task(self._tick_forever())
        await self._attempt(self.store.process_register(self.process_id, ttl=self.ttl))
        try:
            await self._attempt(self._reap_dead())
        except Exception:  # the heartbeat scans again within a tick
            logger.exception("presence: dead-process scan failed")

    async def stop(self, *, goodbye: bool = True) -> None:
        """Stop the heartbeat; with `goodbye`, remove every entry (leaves go to on_change).

        `goodbye=False` leaves everything in the store, as a killed process would.
        """
        ticker, self._ticker = self._ticker, None
        if ticker is not None and not ticker.get_loop().is_closed():
            ticker.cancel()
            if ticker.get_loop() is asyncio.get_running_loop():
                # Bounded: a client that turns the cancel into an error of its
                # own leaves the round running until its call times out.
                await asyncio.wait({ticker}, timeout=STOP_WAIT)
        if not goodbye:
            return
        changes = []
        for socket_id in list(self._sockets):
            changes += await self.socket_close(socket_id)
        await self._attempt(self.store.process_forget(self.process_id))
        await self._emit(changes)

    # --- sockets and streams ------------------------------------------------

    async def socket_open(
        self, socket_id: str, *, user_id: int, username: str, sid: str
    ) -> None:
        """Record a live socket (counted by `user_connections`, `connected_now`)."""
        entry = SocketEntry(user_id=user_id, sid=sid, username=username)
        if self._ticker is None:  # no entry without a heartbeat: it could outlive us
            await self.start()
        async with self._lock(socket_id):
            if socket_id in self._sockets:
                return
            self._sockets[socket_id] = entry
            self._streams[socket_id] = set()
            await self._attempt(
                self.store.socket_add(self.process_id, socket_id, entry)
            )

    async def socket_close(self, socket_id: str) -> list[PresenceChange]:
        """Forget a socket and its streams; the leaves it caused. Idempotent."""
        if socket_id not in self._sockets:
            return []
        async with self._lock(socket_id):
            entry = self._sockets.pop(socket_id, None)
            if entry is None:
                return []
            changes = []
            for stream in sorted(self._streams.pop(socket_id, ())):
                change = await self._leave(socket_id, stream, entry)
                if change is not None:
                    changes.append(change)
            await self._attempt(
                self.store.socket_remove(self.process_id, socket_id, entry)
            )
        self._locks.pop(socket_id, None)
        return changes

    async def stream_join(self, socket_id: str, stream: str) -> PresenceChange | None:
        """Count the socket on `stream`; the join when it is the user's first there.

        Joining a stream the socket is already on changes nothing (None).
        """
        change, _ = await self._join(socket_id, stream, read=0)
        return change

    async def stream_join_read(
        self, socket_id: str, stream: str, *, limit: int = PRESENCE_SNAPSHOT_LIMIT
    ) -> tuple[PresenceChange | None, Snapshot]:
        """`stream_join`, then `snapshot`: one store call (one round trip to Redis).

        A socket that asks for presence does both on every subscribe. The
        snapshot lists the socket's user, also when cut at `limit`.
        """
        change, snapshot = await self._join(socket_id, stream, read=limit)
        if snapshot is None:  # already on the stream, or an outage
            include = self._user_id(socket_id)
            snapshot = await self.snapshot(stream, limit=limit, include=include)
        return change, snapshot

    async def _join(
        self, socket_id: str, stream: str, *, read: int
    ) -> tuple[PresenceChange | None, Snapshot | None]:
        """The join, and with `read` > 0 a snapshot of at most `read` users."""
        entry = self._sockets.get(socket_id)
        if entry is None:
            raise UnknownSocket(socket_id)
        snapshot = None
        async with self._lock(socket_id):
            streams = self._streams.get(socket_id)
            if streams is None or stream in streams:
                return None, None
            streams.add(stream)
            pid, uid, name = self.process_id, entry.user_id, entry.username
            here = self._here.get(stream)
            if here is None:
                here = self._here[stream] = {}
            here[uid] = here.get(uid, 0) + 1
            if read:
                done, answer = await self._attempt(
                    self.store.stream_join_read(
                        pid,
                        socket_id,
                        stream,
                        user_id=uid,
                        username=name,
                        limit=read,
                    )
                )
                version, snapshot = answer if done else (None, None)
            else:
                done, version = await self._attempt(
                    self.store.stream_join(
                        pid, socket_id, stream, user_id=uid, username=name
                    )
                )
            if not done:  # decided from this process's sockets
                version = clock_version() if here[uid] == 1 else None
        if version is None:
            return None, snapshot
        change = PresenceChange(Change.JOIN, stream, uid, name, version, socket_id)
        return change, snapshot

    async def stream_leave(self, socket_id: str, stream: str) -> PresenceChange | None:
        """Stop counting the socket on `stream`; the leave when it was the user's last."""
        entry = self._sockets.get(socket_id)
        if entry is None:
            return None
        async with self._lock(socket_id):
            streams = self._streams.get(socket_id)
            if streams is None or stream not in streams:
                return None
            streams.discard(stream)
            return await self._leave(socket_id, stream, entry)

    async def _leave(
        self, socket_id: str, stream: str, entry: SocketEntry
    ) -> PresenceChange | None:
        here, uid = self._here[stream], entry.user_id
        here[uid] -= 1
        last_here = here[uid] <= 0
        if last_here:
            del here[uid]
        if not here:
            del self._here[stream]
        done, left = await self._attempt(
            self.store.stream_leave(self.process_id, socket_id, stream)
        )
        if not done:
            left = (
                (clock_version(), entry.user_id, entry.username, None)
                if last_here
                else None
            )
        if left is None:
            return None
        version, user_id, username, joined = left
        return PresenceChange(
            Change.LEAVE, stream, user_id, username, version, socket_id, joined
        )

    # --- reading ------------------------------------------------------------

    async def snapshot(
        self,
        stream: str,
        *,
        limit: int | None = None,
        include: int | None = None,
    ) -> Snapshot:
        """Who is on `stream`, on every process (only this one in an outage).

        Cut at `limit` (`PRESENCE_SNAPSHOT_LIMIT`), user `include` is still
        listed (a subscriber's own snapshot includes him, docs/protocol.md §4.4).
        """
        if limit is None:
            limit = PRESENCE_SNAPSHOT_LIMIT
        done, snapshot = await self._attempt(
            self.store.snapshot(stream, limit=limit, include=include)
        )
        if done:
            return snapshot
        names = {e.user_id: e.username for e in self._sockets.values()}
        counts = dict(self._here.get(stream, {}))
        return snapshot_build(
            counts, names, version=clock_version(), limit=limit, include=include
        )

    def _user_id(self, socket_id: str) -> int | None:
        entry = self._sockets.get(socket_id)
        return None if entry is None else entry.user_id

    async def snapshot_shared(
        self, stream: str, render: Callable[[Snapshot], str]
    ) -> tuple[Snapshot, str]:
        """A snapshot and its frame, read and rendered once for every caller.

        After a resync every watcher of the stream on this process asks at
        once: one read and one serialization serve them all. It may have
        started before a caller's last change; callers compare versions
        (`PresenceFilter.newest`).
        """
        read = self._shared_reads.get(stream)
        if read is None:
            read = asyncio.ensure_future(self._snapshot_rendered(stream, render))
            self._shared_reads[stream] = read
            read.add_done_callback(lambda _: self._shared_reads.pop(stream, None))
        return await asyncio.shield(read)

    async def _snapshot_rendered(
        self, stream: str, render: Callable[[Snapshot], str]
    ) -> tuple[Snapshot, str]:
        snapshot = await self.snapshot(stream)
        return snapshot, render(snapshot)

    async def user_connections(self, user_id: int) -> UserConnections:
        """A user's live sockets per session, on every process."""
        done, answer = await self._attempt(self.store.user_connections(user_id))
        if done:
            return answer
        sessions = Counter(
            e.sid for e in self._sockets.values() if e.user_id == user_id
        )
        return user_connections_build(dict(sessions))

    async def connected_now(self) -> list[ConnectedUser]:
        """Every connected user with his sockets per session (the admin's view)."""
        done, answer = await self._attempt(self.store.connected_now())
        if done:
            return answer
        return connected_build(self._sockets.values())

    # --- background ---------------------------------------------------------

    async def _tick_forever(self) -> None:
        """Beat and scan every `tick` until `stop`.

        The loop ends when `stop` let go of this task, not only when it is
        cancelled: a store call may swallow the cancel (an asyncio timeout
        inside a client can turn it into a TimeoutError, an outage here).
        """
        me = asyncio.current_task()
        while self._ticker is me:
            await asyncio.sleep(self.tick)
            try:
                await self._tick()
            except OUTAGE_ERRORS as exc:
                self._outage(exc)
            except Exception:
                logger.exception("presence: heartbeat failed")

    async def _tick(self) -> None:
        alive = await self.store.process_beat(self.process_id, ttl=self.ttl)
        if not alive or self._degraded:
            if not alive:
                await self.store.process_register(self.process_id, ttl=self.ttl)
            await self._rebuild(forgotten=not alive)
        await self._reap_dead()

    async def _reap_dead(self) -> None:
        """Clean up after each process whose heartbeat expired (one claimant each)."""
        for dead in await self.store.processes_dead(self.process_id):
            if await self.store.process_claim(dead, by=self.process_id, ttl=self.ttl):
                await self._reap(dead)

    async def _rebuild(self, *, forgotten: bool) -> None:
        """Make the store hold exactly this process's sockets, then ask for resyncs.

        Each socket is rewritten under its lock, with the store's own idempotent
        joins and leaves, so calls made meanwhile are neither lost nor doubled.
        """
        if self._degraded:
            logger.warning("presence: the store answers again; rebuilding entries")
        elif forgotten:
            logger.warning(
                "presence: the store forgot this process; rebuilding entries"
            )
        self._degraded = False  # calls from now on reach the store again
        pid = self.process_id
        remote = await self.store.process_entries(pid)
        had: dict[str, set[str]] = {}
        for socket_id, stream in remote.streams:
            had.setdefault(socket_id, set()).add(stream)
        touched = {stream for _, stream in remote.streams}
        for socket_id in set(remote.sockets) | set(had) | set(self._sockets):
            async with self._lock(socket_id):
                entry = self._sockets.get(socket_id)
                wanted = set(self._streams.get(socket_id, ())) if entry else set()
                for stream in had.get(socket_id, set()) - wanted:
                    await self.store.stream_leave(pid, socket_id, stream)
                if entry is None and socket_id in remote.sockets:
                    await self.store.socket_remove(
                        pid, socket_id, remote.sockets[socket_id]
                    )
                if entry is not None:
                    await self.store.socket_add(pid, socket_id, entry)
                    for stream in wanted:
                        await self.store.stream_join(
                            pid,
                            socket_id,
                            stream,
                            user_id=entry.user_id,
                            username=entry.username,
                        )
                touched |= wanted
            if socket_id not in self._sockets:
                self._locks.pop(socket_id, None)
        await self._emit([Resync(stream) for stream in sorted(touched)])

    async def _reap(self, dead: str) -> None:
        """Remove a dead process's entries; its users' last sockets become leaves.

        The leaves decided are sent even if the store fails midway: the next
        claim finds those entries gone and would never decide them again.
        """
        entries = await self.store.process_entries(dead)
        changes: list[PresenceEvent] = []
        try:
            for socket_id, stream in entries.streams:
                left = await self.store.stream_leave(dead, socket_id, stream)
                if left is not None:
                    changes.append(_reaped_leave(stream, left))
            for socket_id, entry in entries.sockets.items():
                await self.store.socket_remove(dead, socket_id, entry)
            # Not a blind delete: what it recorded since the read above (it had
            # only stalled) waits for the next claim, or for its own rebuild.
            forgotten = await self.store.process_reaped(dead)
        finally:
            await self._emit(changes)
        logger.info(
            "presence: removed %d socket(s) of dead process %s%s",
            len(entries.sockets),
            dead,
            "" if forgotten else "; it recorded more meanwhile",
        )

    # --- helpers ------------------------------------------------------------

    async def _attempt(self, call: Coroutine) -> tuple[bool, Any]:
        """(True, result) from the store, or (False, None) in an outage.

        In an outage the store is not tried again until the heartbeat gets through,
        so a frame never waits on a dead connection twice.
        """
        if self._degraded:
            call.close()
            return False, None
        try:
            return True, await call
        except OUTAGE_ERRORS as exc:
            self._outage(exc)
            return False, None

    def _outage(self, exc: BaseException) -> None:
        if not self._degraded:
            logger.warning(
                "presence degraded: the store is unreachable (%s); answering "
                "from this process's sockets until it is back",
                type(exc).__name__,
            )
        self._degraded = True

    async def _emit(self, events: list[PresenceEvent]) -> None:
        if not events or self.on_change is None:
            return
        try:
            await self.on_change(events)
        except Exception:
            logger.exception("presence: on_change failed")

    def _lock(self, socket_id: str) -> asyncio.Lock:
        lock = self._locks.get(socket_id)
        if lock is None:
            lock = self._locks[socket_id] = asyncio.Lock()
        return lock


def _reaped_leave(stream: str, left: Left) -> PresenceChange:
    """A leave decided by a dead process's cleanup: no socket caused it."""
    version, user_id, username, joined = left
    return PresenceChange(
        Change.LEAVE, stream, user_id, username, version, None, joined
    )
