"""This process's view of which sessions are alive (docs/security.md).

Asking the database at every handshake would cost a large share of handshake
throughput (docs/architecture.md), so verified sessions are remembered, and a
watcher polls the revocation log every `AUTHSOCKET_REVOCATION_POLL` seconds:
it forgets revoked sessions, refuses their new handshakes and reports them to
its listeners (realtime.revocation closes this process's sockets), whether or
not a channel-layer message arrived. The guard decides; it never sends.

The same poll also learns the sessions that logged in or refreshed since its
last look (at start: within one access-token lifetime, the only ones that can
hold a valid token), so a handshake rarely has to ask the database at all.
Cache misses are batched: concurrent handshakes share one `sid IN (...)` query.
Lookups and polls run on this module's own threads, not on the single thread
`database_sync_to_async` shares with everything else, so a burst of handshakes
never delays the poll (which would make the cache untrusted and the burst worse).

The memory is trusted only while the watcher is healthy: an entry is used only
if the last successful poll STARTED less than `TRUST_WINDOW` ago. A revocation
committed at T is therefore seen by every poll started after T, and a cached
answer is never older than that: from T + 1 s every handshake refuses it. When
the database is unreachable, polls fail, the trust lapses, and every check goes
to the database (and is refused).
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from accounts.selectors import (
    Refusal,
    revocations_since,
    session_refusal,
    sessions_by_sid,
    sessions_used_since,
)
from core import metrics

logger = logging.getLogger(__name__)

TRUST_WINDOW = 0.9  # seconds; < 1 s so the protocol's one-second bound holds
ENTRY_TTL = 30.0  # re-read user fields (username) at least this often
CLOCK_MARGIN = timedelta(seconds=5)  # commit lag and clock skew between processes
REVOKED_MEMORY = 120.0  # seconds a revoked sid is refused without asking the database
MAX_ENTRIES = 100_000
MAX_BATCH = 500


def _poll_database(since, after_pk, used_since):
    """One poll: sessions used recently, THEN the revocation log.

    In this order, a revocation committed between the two reads is in the
    second one and evicts what the first one loaded.
    """
    sessions = sessions_used_since(used_since, limit=MAX_ENTRIES)
    sids, after_pk = revocations_since(since, after_pk)
    return sessions, sids, after_pk


def _in_fresh_connection(function, *args):
    """Run ORM code on a guard thread as `database_sync_to_async` would."""
    close_old_connections()
    try:
        return function(*args)
    finally:
        close_old_connections()


class SessionRefused(Exception):
    """The session cannot be used; `reason` (also the message) says why."""

    def __init__(self, reason: Refusal):
        super().__init__(reason.value)
        self.reason = reason


RevokedListener = Callable[[list[str]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class VerifiedSession:
    user: object
    expires_at: float  # session's absolute expiry, UNIX seconds
    checked_at: float  # monotonic


class SessionGuard:
    def __init__(self) -> None:
        # One thread for polls and one for lookups: neither waits for the other.
        self._poll_thread = ThreadPoolExecutor(1, thread_name_prefix="guard-poll")
        self._lookup_thread = ThreadPoolExecutor(1, thread_name_prefix="guard-lookup")
        self._listeners: list[RevokedListener] = []
        self._reset()

    def _reset(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._verified: dict[str, VerifiedSession] = {}
        self._revoked: dict[str, float] = {}
        self._pending: dict[str, asyncio.Future] = {}
        self._flushing: asyncio.Task | None = None  # kept: loops hold tasks weakly
        self._last_ok = float("-inf")
        self._cursor = timezone.now() - CLOCK_MARGIN
        self._after_pk: int | None = None  # highest revocation log row seen
        self._failing = False

    async def check(self, *, sid: str, user_id: int):
        """The session's user if the session is live; else `SessionRefused`."""
        self._ensure_watching()
        if sid in self._revoked:
            raise SessionRefused(Refusal.REVOKED)
        now = time.monotonic()
        entry = self._verified.get(sid)
        if entry is None or not self._trusted(entry, now):
            entry = await self._lookup(sid)
        if sid in self._revoked:  # revoked while we were looking
            raise SessionRefused(Refusal.REVOKED)
        if isinstance(entry, Refusal):
            raise SessionRefused(entry)
        if entry.user.pk != user_id:
            raise SessionRefused(Refusal.WRONG_USER)
        if entry.expires_at <= time.time():
            raise SessionRefused(Refusal.EXPIRED)
        return entry.user

    def subscribe(self, listener: RevokedListener) -> None:
        """Call `await listener(sids)` with the revoked sessions each poll reads.

        Whoever revoked them, here or elsewhere; kept across resets.
        """
        if listener not in self._listeners:
            self._listeners.append(listener)

    def is_revoked(self, sid: str) -> bool:
        return sid in self._revoked

    def mark_revoked(self, sids: list[str]) -> None:
        """Refuse these sessions now: this process revoked them, or was told so.

        Safe from any thread: single dict operations are atomic under the GIL.
        Other processes learn of it from the channel layer or their poll.
        """
        now = time.monotonic()
        for sid in sids:
            self._revoked.setdefault(sid, now)
            self._verified.pop(sid, None)

    def _trusted(self, entry: VerifiedSession, now: float) -> bool:
        return now - self._last_ok < TRUST_WINDOW and now - entry.checked_at < ENTRY_TTL

    # --- batched lookups ---------------------------------------------------

    async def _lookup(self, sid: str) -> VerifiedSession | Refusal:
        """Ask the database, sharing one query with concurrent handshakes."""
        future = self._pending.get(sid)
        if future is None:
            future = self._pending[sid] = self._loop.create_future()
            if self._flushing is None:
                self._flushing = self._loop.create_task(self._flush())
        return await asyncio.shield(future)

    async def _flush(self) -> None:
        """Answer pending lookups; those arriving meanwhile form the next batch."""
        try:
            while self._pending:
                batch = dict(list(self._pending.items())[:MAX_BATCH])
                for sid in batch:
                    del self._pending[sid]
                await self._answer(batch)
        finally:
            self._flushing = None

    async def _answer(self, batch: dict[str, asyncio.Future]) -> None:
        started = time.monotonic()
        try:
            found = await self._loop.run_in_executor(
                self._lookup_thread, _in_fresh_connection, sessions_by_sid, list(batch)
            )
        except Exception as exc:
            for future in batch.values():
                if not future.done():
                    future.set_exception(exc)
            return
        for sid, future in batch.items():
            entry = self._remember(sid, found.get(sid), started)
            if not future.done():
                future.set_result(entry)

    def _remember(self, sid: str, session, now: float) -> VerifiedSession | Refusal:
        if session is None:
            return Refusal.UNKNOWN
        refusal = session_refusal(session, user_id=session.user_id)
        if refusal is not None:
            return refusal
        if len(self._verified) >= MAX_ENTRIES:
            self._verified.clear()
        entry = VerifiedSession(session.user, session.expires_at.timestamp(), now)
        if sid not in self._revoked:
            self._verified[sid] = entry
        return entry

    # --- the watcher -------------------------------------------------------

    def _ensure_watching(self) -> None:
        """Start the poll on this event loop (tests run one loop per test)."""
        self._ensure_loop()
        if self._task is not None and not self._task.done():
            return
        self._task = self._loop.create_task(
            self._watch(), name="authsocket-revocation-watch"
        )

    async def _watch(self) -> None:
        """Poll at a fixed rate: a slow poll does not push the next one back."""
        interval = settings.AUTHSOCKET_REVOCATION_POLL
        while True:
            started = time.monotonic()
            try:
                await self.poll_once()
            except Exception:  # the safety net must outlive any one bad poll
                logger.exception("revocation poll crashed; polling on")
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

    async def poll_once(self) -> None:
        self._ensure_loop()
        started, started_wall = time.monotonic(), timezone.now()
        try:
            sessions, sids, self._after_pk = await self._loop.run_in_executor(
                self._poll_thread,
                _in_fresh_connection,
                _poll_database,
                self._cursor - CLOCK_MARGIN,
                self._after_pk,
                self._used_cursor(),
            )
        except Exception:
            metrics.database_error("revocation_poll")
            if not self._failing:
                logger.warning("revocation poll failed; checking every handshake")
            self._failing = True
            return
        if self._failing:
            logger.warning("revocation poll recovered")
        self._failing = False
        for session in sessions:
            self._remember(session.sid, session, started)
        await self._apply(sids, started)
        self._cursor = started_wall
        self._last_ok = started
        metrics.guard_polled(started)

    def _used_cursor(self):
        """Since when to load used sessions: the last poll, or one token lifetime."""
        if self._last_ok == float("-inf"):
            lifetime = settings.AUTHSOCKET_ACCESS_TTL + settings.AUTHSOCKET_LEEWAY
            return timezone.now() - timedelta(seconds=lifetime)
        return self._cursor - CLOCK_MARGIN

    def _ensure_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._reset()
            self._loop = loop

    async def _apply(self, sids: list[str], now: float) -> None:
        for sid, seen in list(self._revoked.items()):
            if now - seen > REVOKED_MEMORY:
                del self._revoked[sid]
        for sid in sids:
            self._revoked.setdefault(sid, now)
            self._verified.pop(sid, None)
        if not sids:
            return
        for listener in self._listeners:
            try:
                await listener(sids)
            except Exception:  # the poll must outlive any one listener
                logger.exception("a revocation listener failed")

    async def stop(self) -> None:
        """Cancel the watcher (tests, shutdown)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._reset()


guard = SessionGuard()
