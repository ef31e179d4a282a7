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

A join goes out only once it has stood for a whole window: one younger than
that at a window's end waits for the next. A visit shorter than a window is
then never announced, wherever the window's ends fall; otherwise every visit
that straddles an end (a tab opened and closed, a socket that subscribes
and unsubscribes at once) would cost every watcher a join and a leave. A
join reaches watchers one to two windows after the subscribe; the window is
capped so that stays inside the protocol's second. Leaves are not held: the
sockets that saw the visitor in a snapshot must be told he left.

Dropping a user's older changes is safe: receivers already drop a change
older than the last one they applied for that user (presence/ordering.py),
so an older one adds nothing once the newer is sent. And because receivers
pass on only changes that alter their view, a leave of a visitor whose join
was never sent tells a watcher that never showed him nothing.

One older change is kept: a leave watchers must be told (the user had been
shown) followed by the user's join within the window (a page reload, an
unsubscribe and subscribe at once). His last socket did leave, and the join
alone would tell a watcher that showed him nothing; so the leave goes out
at the window's end and the join after it, once it has stood a window
(`Kept.leave_first`). A leave after that join makes one leave again.

It would still cost each such watcher a look at the leave: on a stream with
200 watchers and hundreds of short visits a second, most of the work of
presence. So a leave says whom it is no news to. Per stream and user, the
outbox follows the chain of changes it replaced without sending; when a
leave ends the visit of the very join it replaces (the store's `joined`),
and every change in the chain was such a visit, the leave is marked
`hidden_since` the chain's first join. Then this process has sent nothing of
the user since that version, and the presence he had before it had ended:
a watcher whose snapshot is older was never shown him by this process, and
whatever other processes showed it, they also send it the end of. That
watcher skips the leave unread (`Batch.for_snapshot`). Anything else (a
visit that began on another process, an older change queued after a newer
one) leaves the leave unmarked, for every watcher to look at.
tests/reliability/test_presence_delivery_properties.py checks this against
every interleaving it can find.

A window with more users than `resync_over` sends one `Resync` instead:
receivers take a fresh snapshot, one frame each, rather than hundreds.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from realtime.presence.events import Change, PresenceChange, PresenceEvent, Resync

logger = logging.getLogger(__name__)

SendChanges = Callable[[str, list[PresenceChange]], Awaitable[None]]
SendResync = Callable[[Resync], Awaitable[None]]


class Kept(NamedTuple):
    """A user's newest change on a stream, waiting for its window's end."""

    change: PresenceChange
    queued: float  # the loop's clock when it was queued
    hidden_since: int | None  # the unsent chain's first join; None: not hidden
    # A leave watchers must be told before `change`, a join: the user was
    # shown, left and came back within the window (see the module).
    leave_first: PresenceChange | None = None


Pending = dict[str, dict[int, Kept]]  # stream → user id → his newest change

# A join queued at the very start of a window is due at its end: the timer may
# fire a hair before the loop's clock says a whole window has passed.
CLOCK_SLACK = 0.001


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
        self.clock: Callable[[], float] = self.loop.time
        self._send_changes = send_changes
        self._send_resync = send_resync
        self._pending: Pending = {}
        self._timer: asyncio.TimerHandle | None = None  # the window is open
        self._sending = asyncio.Lock()  # batches leave in the order they closed
        self._flushing: set[asyncio.Task] = set()  # strong references

    def add(self, event: PresenceEvent) -> None:
        """Keep the change (the newest per stream and user) until it is due."""
        if isinstance(event, Resync):  # rare: sent at once, its snapshot is newer
            self._spawn(self._send_resync(event))
            return
        users = self._pending.setdefault(event.stream, {})
        kept = users.get(event.user_id)
        if kept is not None and event.version <= kept.change.version:
            # Decided before the kept one, queued after: dropped, but it may be
            # news to someone, so the kept one hides nothing any more.
            users[event.user_id] = kept._replace(hidden_since=None)
            return
        users[event.user_id] = Kept(
            event, self.clock(), hidden_since(kept, event), leave_first(kept, event)
        )
        self._timer_start()

    async def send_due(self) -> None:
        """A window's end: send every leave, and every join that stood a window."""
        async with self._sending:
            await self._send(self._take(due_only=True))
        if self._pending:  # young joins: due at the next window's end
            self._timer_start()

    async def flush(self) -> None:
        """Send everything pending now, and wait for sends already under way."""
        self._cancel_timer()
        async with self._sending:
            await self._send(self._take(due_only=False))
        # A finished task leaves the set only when its callback has run: wait
        # for the unfinished ones (awaiting finished ones never yields).
        while under_way := [task for task in self._flushing if not task.done()]:
            await asyncio.gather(*under_way, return_exceptions=True)

    def _window_ended(self) -> None:
        self._timer = None
        self._spawn(self.send_due())

    def _take(self, *, due_only: bool) -> Pending:
        """What goes out now, per stream; joins not yet due stay pending.

        A stream over `resync_over` goes out whole: its resync's snapshot
        shows the young joins too.
        """
        taken, self._pending = self._pending, {}
        if not due_only:
            return taken
        born_before = self.clock() - self.window + CLOCK_SLACK
        for stream, users in taken.items():
            if len(users) > self.resync_over:
                continue
            young = {
                user_id: kept
                for user_id, kept in users.items()
                if kept.change.kind is Change.JOIN and kept.queued > born_before
            }
            if young:
                self._pending[stream] = {
                    user_id: kept._replace(leave_first=None)
                    for user_id, kept in young.items()
                }
                for user_id, kept in young.items():
                    if kept.leave_first is None:
                        del users[user_id]
                    else:  # the leave is due now; the join when it stood a window
                        users[user_id] = Kept(kept.leave_first, kept.queued, None)
        return taken

    async def _send(self, pending: Pending) -> None:
        for stream, users in pending.items():
            if not users:
                continue
            changes = sorted(
                (change for kept in users.values() for change in marked(kept)),
                key=_by_version,
            )
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

    def _timer_start(self) -> None:
        if self._timer is None:
            self._timer = self.loop.call_later(self.window, self._window_ended)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def hidden_since(kept: Kept | None, change: PresenceChange) -> int | None:
    """The mark of `change` when it replaces `kept` unsent (see the module)."""
    if kept is None:  # a fresh chain: only an unsent join can start one
        return change.version if change.kind is Change.JOIN else None
    if change.kind is Change.JOIN:
        return kept.hidden_since
    if kept.change.kind is Change.JOIN and change.joined == kept.change.version:
        return kept.hidden_since
    return None


def leave_first(kept: Kept | None, change: PresenceChange) -> PresenceChange | None:
    """The leave to send before `change`, when it replaces `kept` unsent.

    A leave watchers must be told (not hidden: the user was shown) followed
    by a join within the window: the user's last socket left and one came
    back. Sent as the join alone, watchers that showed him would learn
    nothing, and the contract owes them that leave. A leave after that join
    makes a leave again, which needs nothing before it.
    """
    if kept is None or change.kind is not Change.JOIN:
        return None
    if kept.change.kind is Change.LEAVE and kept.hidden_since is None:
        return kept.change
    return kept.leave_first


def marked(kept: Kept) -> tuple[PresenceChange, ...]:
    """The changes sent for `kept`: a leave carries its chain's mark, a join
    none; a join that follows a leave within the window comes after it."""
    change = kept.change
    if change.kind is Change.LEAVE and kept.hidden_since is not None:
        return (change.hidden(kept.hidden_since),)
    if kept.leave_first is not None:
        return kept.leave_first, change
    return (change,)


def _by_version(change: PresenceChange) -> int:
    return change.version
