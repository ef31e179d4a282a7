"""One channel-layer inbox per process for the presence of every stream it watches.

A stream's presence batch (one per window, realtime/presence/outbox.py) used
to reach each watching socket through the socket's own channel: 200 watchers
on one process were 200 channel-layer deliveries and 200 consumer dispatches
every window, a burst of several milliseconds that delayed the stream's own
messages even when the batch told nobody anything (a join and leave within
the window). Here the process's inbox is the only member of each presence
group it has watchers for; one reader task receives a batch once and hands
it to the local watchers in one pass, each filtering it with its own view
(realtime/presence/ordering.py).

The documented order still holds: `watch` returns once the inbox is in the
group, and a watcher registers its socket and reads its snapshot only after
that, so no change numbered after the snapshot can miss it. A watcher must
offer `unconcerned(stream, batch)`, `changes_arrived(event)` and
`resync(event, shared)` (realtime.presence_frames).

Most watchers of a churning stream have nothing to look at in a batch: the
visits it ends began after their snapshots, so its leaves are marked hidden
from them (realtime/presence/outbox.py). The relay parses the batch once and
asks each watcher, without a coroutine, whether anything in it concerns it;
only those it concerns are handed the batch.

Presence has its window to spare; a stream's messages do not. A batch told
to 200 watchers is 200 sends, several milliseconds, so the relay hands the
event loop back every `SLICE` seconds and messages that arrived meanwhile go
out in between. A resync is a fresh snapshot for every watcher, far more
work: it runs in a task of its own per stream, in slices too, so neither the
reader nor the messages wait for it, and resyncs that arrive while one is
under way make one more round, not one each.
"""

import asyncio
import logging
from typing import Protocol

from core import metrics
from realtime.presence.events import BATCH_EVENT, RESYNC_EVENT, Batch, batch_changes

logger = logging.getLogger(__name__)

INBOX_PREFIX = "presence"
RETRY_AFTER = 1.0  # seconds between two reads while the layer is failing
SLICE = 0.001  # seconds of presence sends between two turns of the event loop


class Watcher(Protocol):
    def unconcerned(self, stream: str, batch: Batch) -> bool: ...

    async def changes_arrived(self, event: dict) -> None: ...

    async def resync(self, event: dict, shared: dict) -> None: ...


class PresenceRelay:
    """This process's presence inbox on one channel layer and event loop."""

    def __init__(self, layer) -> None:
        self.layer = layer
        self.loop = asyncio.get_running_loop()
        self.inbox: str | None = None
        self._watchers: dict[str, set[Watcher]] = {}  # stream → local watchers
        self._groups: dict[str, str] = {}  # stream → its presence group
        self._membership = asyncio.Lock()  # a group's first watcher or its last
        self._tasks: set[asyncio.Task] = set()  # reader, refresher, resyncs
        self._resyncing: dict[str, bool] = {}  # stream → another round asked for

    async def watch(self, stream: str, group: str, watcher: Watcher) -> None:
        """Hand `stream`'s presence events to `watcher` from now on.

        Raises what the channel layer raises when the inbox cannot join.
        """
        watchers = self._watchers.get(stream)
        if watchers is None:  # the first here: join, unless another just did
            async with self._membership:
                watchers = self._watchers.get(stream)
                if watchers is None:
                    await self._joined(stream, group)
                    watchers = self._watchers[stream] = set()
        watchers.add(watcher)

    async def unwatch(self, stream: str, watcher: Watcher) -> None:
        """Stop at once; the inbox leaves the group with the stream's last watcher."""
        watchers = self._watchers.get(stream)
        if watchers is None:
            return
        watchers.discard(watcher)
        if watchers:
            return
        async with self._membership:
            if self._watchers.get(stream):  # someone came back while we waited
                return
            self._watchers.pop(stream, None)
            group = self._groups.pop(stream, None)
            if group is None:
                return
            try:
                await self.layer.group_discard(group, self.inbox)
            except Exception as exc:  # the layer expires the member by itself
                logger.warning("presence: leaving a group failed (%s)", exc_name(exc))

    def watching(self, stream: str) -> int:
        """How many local watchers `stream` has (tests, the admin)."""
        return len(self._watchers.get(stream, ()))

    async def stop(self) -> None:
        """Cancel the reader and whatever it started (tests, shutdown)."""
        tasks, self._tasks = self._tasks, set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- internals --------------------------------------------------------------

    async def _joined(self, stream: str, group: str) -> None:
        if self.inbox is None:
            self.inbox = await self.layer.new_channel(INBOX_PREFIX)
            self._spawn(self._read_forever())
            self._spawn(self._refresh_forever())
        await self.layer.group_add(group, self.inbox)
        self._groups[stream] = group

    async def _read_forever(self) -> None:
        while True:
            try:
                event = await self.layer.receive(self.inbox)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # an outage: the layer retries, so do we
                metrics.channel_layer_error("receive")
                logger.warning("presence: the inbox read failed (%s)", exc_name(exc))
                await asyncio.sleep(RETRY_AFTER)
                continue
            await self._dispatch(event)

    async def _dispatch(self, event: dict) -> None:
        """One batch to every local watcher of its stream, in slices; a resync aside."""
        stream = event.get("stream")
        if event.get("type") == RESYNC_EVENT:
            self._resync_soon(stream, event)
            return
        if event.get("type") != BATCH_EVENT:
            return
        try:
            batch = batch_changes(event)
        except Exception:  # not one of ours: the reader goes on
            logger.exception("presence: a batch could not be read")
            return
        turn = TimeSlice(self.loop)
        for watcher in tuple(self._watchers.get(stream, ())):
            try:
                if not watcher.unconcerned(stream, batch):
                    await watcher.changes_arrived(event)
            except Exception:  # one socket's failure is not the others'
                logger.exception("presence: passing changes on failed")
            if turn.over():
                await asyncio.sleep(0)

    def _resync_soon(self, stream: str, event: dict) -> None:
        if stream in self._resyncing:  # a round is under way: one more after it
            self._resyncing[stream] = True
            return
        self._resyncing[stream] = False
        self._spawn(self._resync_rounds(stream, event))

    async def _resync_rounds(self, stream: str, event: dict) -> None:
        """Every local watcher of `stream` takes a fresh snapshot, one read for all."""
        try:
            while True:
                shared: dict = {}  # the round's snapshot, read once
                turn = TimeSlice(self.loop)
                for watcher in tuple(self._watchers.get(stream, ())):
                    try:
                        await watcher.resync(event, shared)
                    except Exception:  # one socket's failure is not the others'
                        logger.exception("presence: a resync failed")
                    if turn.over():
                        await asyncio.sleep(0)
                if not self._resyncing[stream]:
                    return
                self._resyncing[stream] = False
        finally:
            self._resyncing.pop(stream, None)

    async def _refresh_forever(self) -> None:
        """Re-add the inbox before the layer's `group_expiry` drops it.

        Sockets live minutes; this inbox lives as long as the process, and a
        layer forgets a member `group_expiry` seconds after it was added.
        """
        every = max(getattr(self.layer, "group_expiry", 86400) / 2, 1.0)
        while True:
            await asyncio.sleep(every)
            for stream, group in list(self._groups.items()):
                try:
                    await self.layer.group_add(group, self.inbox)
                except Exception as exc:  # the next round tries again
                    logger.warning(
                        "presence: re-adding %s failed (%s)", stream, exc_name(exc)
                    )

    def _spawn(self, work) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class TimeSlice:
    """Says when `SLICE` seconds of work have run: time to hand the loop back.

    A check, not a coroutine: it runs once per watcher, and most watchers
    cost less than a coroutine would.
    """

    __slots__ = ("loop", "ends")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.ends = loop.time() + SLICE

    def over(self) -> bool:
        """True once the slice has run out; the next one begins now."""
        now = self.loop.time()
        if now < self.ends:
            return False
        self.ends = now + SLICE
        return True


_relay: PresenceRelay | None = None


def relay_for(layer) -> PresenceRelay:
    """This process's relay on `layer` and the running loop (tests run one loop each)."""
    global _relay
    if (
        _relay is None
        or _relay.layer is not layer
        or _relay.loop is not asyncio.get_running_loop()
    ):
        _relay = PresenceRelay(layer)
    return _relay


async def relay_reset() -> None:
    """Stop and forget the relay (tests; shutdown)."""
    global _relay
    relay, _relay = _relay, None
    if relay is not None and relay.loop is asyncio.get_running_loop():
        await relay.stop()


def exc_name(exc: BaseException) -> str:
    return type(exc).__name__
