"""The channel layer for several processes: channels_redis, with its `receive()` replaced.

`ResilientRedisChannelLayer` (with `REDIS_URL`): channels_redis lets a
connection error escape `receive()`, and the consumer's receive loop dies with
it: when Redis blinks, every socket of the process closes with 1011. Here one
reader task per process takes the messages off Redis and hands them to each
channel's local queue (also much cheaper per socket than channels_redis's
shared receive lock); it backs off and retries through an outage, and once
Redis answers again re-adds the process's group memberships (a restarted
Redis has forgotten them). The memberships are also re-added well within
`group_expiry`: channels_redis forgets a member a day after it joined, and a
socket may live as long as its session. `send`, `group_send` and `group_add`
still raise, so their callers decide: a handshake is refused, a revocation is
left to the database poll. `group_discard` never raises: the membership is
forgotten here and expires in Redis by itself.

Figures: docs/architecture.md ("Framework overrides"). channels-redis is
pinned exactly in requirements.txt, and
realtime/tests/test_upstream_fingerprints.py fails when an upgrade changes the
upstream code this relies on (`receive`, `receive_single`, `non_local_name`).
"""

import asyncio
import contextlib
import logging
import random
import time

from channels_redis.core import RedisChannelLayer
from redis.exceptions import RedisError

from realtime.mailbox import Mailbox

logger = logging.getLogger(__name__)

OUTAGE_ERRORS = (RedisError, OSError)  # OSError covers ConnectionError, TimeoutError
RETRY_FIRST = 0.1  # seconds
RETRY_MAX = 2.0


CLOSED_MEMORY = 60.0  # seconds a departed consumer's channel drops messages


class ResilientRedisChannelLayer(RedisChannelLayer):
    """channels_redis that rides out Redis outages and reads with one task."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._memberships: dict[str, set[str]] = {}  # channel → groups, this process
        self._outage = False
        self._recovery: asyncio.Task | None = None
        self._keeper: asyncio.Task | None = None
        # This process's channels: one reader per (event loop, Redis key) takes
        # messages off Redis and hands each to the local queue of its channel.
        self._inboxes: dict[str, Mailbox] = {}
        self._readers: dict[tuple, asyncio.Task] = {}
        # Channels whose consumer is gone → when it went. A group message read
        # just after a socket left would otherwise make a queue nobody drains.
        self._closed: dict[str, float] = {}

    async def group_add(self, group: str, channel: str) -> None:
        await super().group_add(group, channel)
        self._memberships.setdefault(channel, set()).add(group)

    async def group_discard(self, group: str, channel: str) -> None:
        groups = self._memberships.get(channel)
        if groups is not None:
            groups.discard(group)
            if not groups:
                del self._memberships[channel]
        # On failure Redis drops the member after group_expiry; we no longer rejoin it.
        with contextlib.suppress(*OUTAGE_ERRORS):
            await super().group_discard(group, channel)

    async def receive(self, channel: str) -> dict:
        """A message for one of this process's channels, from its local queue.

        channels_redis's own `receive()` has every waiting consumer race for a
        shared lock with two fresh tasks per message, so a group message to
        many local sockets waits on all of them (docs/architecture.md). Here
        one reader task per process does channels_redis's
        `receive_single()` (a group message arrives once, naming all its local
        channels) and each consumer only waits on its own queue.
        """
        if "!" not in channel:  # not process-local: channels_redis as it is
            return await super().receive(channel)
        self._ensure_reader(self.non_local_name(channel))
        queue = self._inbox(channel)
        try:
            message = await queue.get()
        except asyncio.CancelledError:  # the consumer is gone
            self._inboxes.pop(channel, None)
            self._mark_closed(channel)
            raise
        if queue.empty():  # as channels_redis: a later message makes a new one
            self._inboxes.pop(channel, None)
        return message

    def channel_forget(self, channel: str) -> None:
        """Its consumer has ended (realtime/channels_overrides.py).

        Its queue goes, with any messages it still held, and messages still
        on their way are dropped (`_closed`), not queued for nobody for good.
        """
        self._inboxes.pop(channel, None)
        if channel not in self._closed:
            self._mark_closed(channel)

    async def flush(self) -> None:
        """Forget this process's state too, or a reader would re-add it."""
        await self._stop_readers()
        self._memberships.clear()
        self._inboxes.clear()
        self._closed.clear()
        await super().flush()

    async def close_pools(self) -> None:
        await self._stop_readers()
        await super().close_pools()

    async def _stop_readers(self) -> None:
        here = asyncio.get_running_loop()
        readers = [r for (loop, _), r in self._readers.items() if loop is here]
        self._readers.clear()  # a reader of another, finished loop is gone already
        for task in (self._recovery, self._keeper):
            if task is not None and task.get_loop() is here:
                readers.append(task)
        self._recovery = self._keeper = None
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)

    def _inbox(self, channel: str) -> Mailbox:
        queue = self._inboxes.get(channel)
        if queue is None:  # every idle socket waits on one: not an asyncio.Queue
            queue = self._inboxes[channel] = Mailbox()
        return queue

    def _mark_closed(self, channel: str) -> None:
        now = time.monotonic()
        self._closed[channel] = now
        while self._closed and now - next(iter(self._closed.values())) > CLOSED_MEMORY:
            del self._closed[next(iter(self._closed))]

    def _deliver(self, channel: str, message: dict) -> None:
        """Queue a message; a full queue drops its oldest, as channels_redis does.

        Messages for a channel whose consumer left are dropped: channel names
        are never reused, and in-flight ones arrive well within CLOSED_MEMORY.
        """
        if channel in self._closed:
            return
        queue = self._inbox(channel)
        if queue.qsize() >= self.get_capacity(channel):
            queue.get_nowait()
        queue.put_nowait(message)

    def _ensure_reader(self, redis_channel: str) -> None:
        loop = asyncio.get_running_loop()
        key = (loop, redis_channel)
        reader = self._readers.get(key)
        if reader is None or reader.done():
            self._readers[key] = loop.create_task(
                self._read(redis_channel), name=f"channel-layer-reader {redis_channel}"
            )
        keeper = self._keeper
        if keeper is None or keeper.done() or keeper.get_loop() is not loop:
            self._keeper = loop.create_task(
                self._keep_memberships(), name="channel-layer-memberships"
            )

    async def _keep_memberships(self) -> None:
        """Re-add this process's memberships four times per `group_expiry`.

        channels_redis drops a member `group_expiry` (a day) after it joined,
        at the next `group_send`, and a group's key expires as long after its
        last join: that forgets a killed process's channels. A socket may live
        as long as its session (two weeks by default, renewing its token in
        band), and without this it would stop hearing its rooms, its user
        stream and its revocations (left to the poll) after a day.
        """
        while True:
            await asyncio.sleep(self.group_expiry / 4)
            try:
                await self._rejoin_all()
            except OUTAGE_ERRORS as exc:
                self._note_outage(exc)  # the recovery re-adds them all
            except Exception:  # the next round must still come
                logger.exception("re-adding group memberships failed")

    async def _rejoin_all(self) -> int:
        """Add every membership of this process again; how many there were."""
        pairs = [(g, c) for c, groups in self._memberships.items() for g in groups]
        for group, channel in pairs:
            await super().group_add(group, channel)
            if group not in self._memberships.get(channel, ()):
                # Left while we re-added it: do not leave it behind in Redis.
                await super().group_discard(group, channel)
        return len(pairs)

    async def _read(self, redis_channel: str) -> None:
        """Take this process's messages off Redis for as long as it runs.

        A Redis outage never reaches the consumers: their sockets stay open
        while this retries with backoff, and a recovery task re-adds the
        process's group memberships (a restarted Redis has forgotten them).
        """
        delay = RETRY_FIRST
        while True:
            try:
                targets, message = await self.receive_single(redis_channel)
            except OUTAGE_ERRORS as exc:
                self._note_outage(exc)
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, RETRY_MAX)
                continue
            except Exception:  # one unreadable message must not starve every socket
                logger.exception("channel layer reader: message dropped")
                await asyncio.sleep(RETRY_FIRST)
                continue
            delay = RETRY_FIRST
            for target in targets if isinstance(targets, list) else (targets,):
                self._deliver(target, message)

    def _note_outage(self, exc: Exception) -> None:
        """Log the outage once and make sure a recovery task is running."""
        if not self._outage:
            logger.warning(
                "channel layer unreachable (%s); sockets stay open, retrying",
                type(exc).__name__,
            )
        self._outage = True
        if self._recovery is None or self._recovery.done():
            self._recovery = asyncio.get_running_loop().create_task(self._recover())

    async def _recover(self) -> None:
        """Re-add every membership of this process once Redis answers again.

        A task of its own, not the reader's job: when Redis comes back with no
        message for this process, the reader blocks in its next pop, and the
        memberships a restarted Redis forgot must not wait for a message that
        can only come through them.
        """
        delay = RETRY_FIRST
        while True:
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, RETRY_MAX)
            try:
                await self.connection(0).ping()  # answers even with no membership
                rejoined = await self._rejoin_all()
            except OUTAGE_ERRORS:
                continue  # still down
            self._outage = False
            logger.warning(
                "channel layer recovered; re-added %d group membership(s)", rejoined
            )
            return
