"""Presence changes gathered for a short window, then sent once per stream.

Sent one by one, every join and leave is one channel-layer message and one
frame per watcher: a stream with 200 watchers and 10 subscribes a second is
4,000 frames a second, and a rolling restart overflows the watchers' channel
capacity, which drops messages silently. So each process keeps, per stream
and per user, only the NEWEST change it decided during the window
(`AUTHSOCKET_PRESENCE_WINDOW_MS`), then sends the stream's survivors as one
message. The window costs every change up to its length in delay (the
protocol allows a second); sending a lone change at once instead would
deliver a quick join-and-leave as two frames to every watcher.

Dropping a user's older changes is safe: receivers already drop a change
older than the last one they applied for that user (presence/ordering.py),
so an older one adds nothing once the newer is sent. And because receivers
pass on only changes that alter their view, a user who joined and left in one
window costs the watchers nothing.

A window with more users than `resync_over` sends one `Resync` instead:
receivers take a fresh snapshot, one frame each, rather than hundreds.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from realtime.presence.events import PresenceChange, PresenceEvent, Resync

logger = logging.getLogger(__name__)

SendChanges = Callable[[str, list[PresenceChange]], Awaitable[None]]
SendResync = Callable[[Resync], Awaitable[None]]


class PresenceOutbox:
    """One process's pending presence changes, on one event loop."""

    def __init__(
        self,
        *,
        window: float,
        resync_over: int,
        send_changes: SendChanges,
        send_resync: SendResync,
    ) -> None:
        self.window = window
        self.resync_over = resync_over
        self.loop = asyncio.get_running_loop()
        self._send_changes = send_changes
        self._send_resync = send_resync
        self._pending: dict[str, dict[int, PresenceChange]] = {}
        self._timer: asyncio.TimerHandle | None = None  # the window is open
        self._sending = asyncio.Lock()  # batches leave in the order they closed
        self._flushing: set[asyncio.Task] = set()  # strong references

    def add(self, event: PresenceEvent) -> None:
        """Keep the change (the newest per stream and user) until the window ends."""
        if isinstance(event, Resync):  # rare: sent at once, its snapshot is newer
            self._spawn(self._send_resync(event))
            return
        users = self._pending.setdefault(event.stream, {})
        kept = users.get(event.user_id)
        if kept is None or event.version > kept.version:
            users[event.user_id] = event
        if self._timer is None:
            self._timer = self.loop.call_later(self.window, self._window_ended)

    async def flush(self) -> None:
        """Send everything pending now, and wait for sends already under way."""
        self._cancel_timer()
        await self._send_pending()
        # A finished task leaves the set only when its callback has run: wait
        # for the unfinished ones (awaiting finished ones never yields).
        while under_way := [task for task in self._flushing if not task.done()]:
            await asyncio.gather(*under_way, return_exceptions=True)

    def _window_ended(self) -> None:
        self._timer = None
        self._spawn(self._send_pending())

    async def _send_pending(self) -> None:
        async with self._sending:
            await self._send(self._take_pending())

    def _take_pending(self) -> dict[str, dict[int, PresenceChange]]:
        pending, self._pending = self._pending, {}
        return pending

    async def _send(self, pending: dict[str, dict[int, PresenceChange]]) -> None:
        for stream, users in pending.items():
            changes = sorted(users.values(), key=lambda change: change.version)
            try:
                if len(changes) > self.resync_over:
                    await self._send_resync(Resync(stream))
                else:
                    await self._send_changes(stream, changes)
            except Exception:
                logger.exception("presence: sending the changes of a stream failed")

    def _spawn(self, send: Awaitable[None]) -> None:
        task = asyncio.ensure_future(send)
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
