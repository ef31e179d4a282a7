"""Presence changes, sent to the sockets that asked for them, on every process.

The registry decides and returns changes; this is the one place they become
channel-layer messages, to each stream's presence group (realtime.groups),
and the one place the joins and leaves are counted (once per change, by the
process that caused or noticed it, never per receiver). Changes wait in this
process's outbox for `AUTHSOCKET_PRESENCE_WINDOW_MS`, then go out as one
message per stream (realtime/presence/outbox.py says why); they are added to
the metrics then too, a window's worth at a time, as a subscribe and an
unsubscribe with presence are two changes each.
"""

import asyncio

from django.conf import settings

from core import metrics
from realtime.broadcast import agroup_send
from realtime.frames import dumps
from realtime.presence import registry_get, registry_stop
from realtime.presence.events import (
    Change,
    PresenceChange,
    PresenceEvent,
    Resync,
    batch_event,
)
from realtime.presence.outbox import PresenceOutbox
from realtime.presence.registry import SocketRegistry
from realtime.presence.relay import relay_reset
from realtime.presence.shutdown import goodbye_on_shutdown
from realtime.protocol import ServerFrame
from realtime.streams import stream_parse

FALLBACK = "presence is late until the next snapshot"
# Users changed on one stream in one window above which watchers get one fresh
# snapshot instead of a frame per change (a restart, a class joining at once).
RESYNC_OVER = 100
CHANGE_FRAMES = {
    Change.JOIN: ServerFrame.PRESENCE_JOIN,
    Change.LEAVE: ServerFrame.PRESENCE_LEAVE,
}

_outbox: PresenceOutbox | None = None
# (stream, joined) → changes decided and not yet in the metrics: at most a
# window's worth, since every window's end counts them (`_counted`).
_uncounted: dict[tuple[str, bool], int] = {}


def presence_broadcast(events: list[PresenceEvent | None]) -> None:
    """Count each change and queue it for its stream's watchers; None is skipped.

    Only queues (the outbox sends at the window's end), so it does not await:
    every subscribe and unsubscribe with presence calls it.
    """
    outbox = _outbox_get()
    for event in events:
        if event is None:
            continue
        if isinstance(event, PresenceChange):
            key = (event.stream, event.kind is Change.JOIN)
            _uncounted[key] = _uncounted.get(key, 0) + 1
        outbox.add(event)


def _counted() -> None:
    """Add the changes decided since the last window to the metrics."""
    global _uncounted
    counts, _uncounted = _uncounted, {}
    for (stream, joined), count in counts.items():
        metrics.presence_changed(stream, joined=joined, count=count)


async def presence_flush() -> None:
    """Send what is queued now (shutdown, tests) instead of at the window's end."""
    if _outbox is not None and _outbox.loop is asyncio.get_running_loop():
        await _outbox.flush()


async def registry_started() -> SocketRegistry:
    """This process's registry, heartbeat running, broadcasting what it notices."""
    registry = registry_get()
    await registry.start(on_change=_noticed)
    goodbye_on_shutdown(registry_stopped)  # plain daphne's SIGTERM: leaves now
    return registry


async def _noticed(events: list[PresenceEvent]) -> None:
    """The registry's `on_change`: what nobody called for (a dead process)."""
    presence_broadcast(events)


async def registry_stopped() -> None:
    """Say goodbye on shutdown: every entry removed, the leaves sent now."""
    await registry_stop()
    await presence_flush()
    await relay_reset()  # nothing is watched any more: the reader can go


def _outbox_get() -> PresenceOutbox:
    """This process's outbox, on the running loop (tests run one loop each)."""
    global _outbox, _uncounted
    if _outbox is None or _outbox.loop is not asyncio.get_running_loop():
        _uncounted = {}  # an earlier loop's (tests): its window will never end
        _outbox = PresenceOutbox(
            window=settings.AUTHSOCKET_PRESENCE_WINDOW_MS / 1000,
            resync_over=RESYNC_OVER,
            send_changes=_send_changes,
            send_resync=_send_resync,
        )
    return _outbox


async def _send_changes(name: str, changes: list[PresenceChange]) -> None:
    _counted()
    stream = stream_parse(name, user_id=None)
    if stream is not None:  # else its kind is gone from the project
        event = batch_event(name, changes, [change_frame(c) for c in changes])
        await agroup_send(stream.presence_group, event, fallback=FALLBACK)


async def _send_resync(resync: Resync) -> None:
    _counted()
    stream = stream_parse(resync.stream, user_id=None)
    if stream is not None:
        await agroup_send(stream.presence_group, resync.event(), fallback=FALLBACK)


def change_frame(change: PresenceChange) -> str:
    """The `presence.join` / `presence.leave` frame of a change (docs/protocol.md §4.4)."""
    frame = {"type": CHANGE_FRAMES[change.kind], "stream": change.stream}
    return dumps({**frame, "user": change.user})
