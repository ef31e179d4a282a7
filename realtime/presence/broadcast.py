"""Presence changes, sent to the sockets that asked for them, on every process.

The registry decides and returns changes; this is the one place they become
channel-layer messages, to each stream's presence group (realtime.groups),
and the one place the joins and leaves are counted (once per change, by the
process that caused or noticed it, never per receiver).
"""

from authsocket import metrics
from realtime.broadcast import agroup_send
from realtime.presence import registry_get
from realtime.presence.events import Change, PresenceChange, PresenceEvent
from realtime.presence.registry import SocketRegistry
from realtime.streams import stream_parse

FALLBACK = "presence is late until the next snapshot"


async def presence_broadcast(events: list[PresenceEvent | None]) -> None:
    """Send each change (or resync) to its stream's presence group; None is skipped."""
    for event in events:
        if event is None:
            continue
        stream = stream_parse(event.stream, user_id=None)
        if stream is None:  # its kind is gone from the project
            continue
        if isinstance(event, PresenceChange):
            if event.kind is Change.JOIN:
                metrics.presence_joined(event.stream)
            else:
                metrics.presence_left(event.stream)
        await agroup_send(stream.presence_group, event.event(), fallback=FALLBACK)


async def registry_started() -> SocketRegistry:
    """This process's registry, heartbeat running, broadcasting what it notices."""
    registry = registry_get()
    await registry.start(on_change=presence_broadcast)
    return registry
