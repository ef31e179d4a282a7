"""One socket's presence (docs/protocol.md §4.4): snapshots, joins and leaves.

`StreamPresence` is owned by `StreamSubscriptions`, which tells it when a
stream of a kind with presence is subscribed, resubscribed or ended; it keeps
which streams this socket watches (one `PresenceFilter` each) and registers
the socket on them in the registry of live sockets. The order that keeps a
watcher from losing or doubling a change: join the presence group, register
the socket, then read the snapshot (realtime/presence/ordering.py).
"""

from functools import partial

from channels.db import database_sync_to_async

from realtime.frames import dumps
from realtime.permissions import Action, stream_access
from realtime.presence import registry_get
from realtime.presence.broadcast import presence_broadcast
from realtime.presence.events import Snapshot, batch_changes
from realtime.presence.ordering import PresenceFilter
from realtime.protocol import ServerFrame
from realtime.streams import Stream, stream_parse


class StreamPresence:
    """Which streams this socket watches, and its place on every stream it is on.

    `socket` is the consumer: `channel_name` (its id in the registry),
    `send_frame`, `group_join` and `group_leave` are all this uses.
    """

    def __init__(self, *, socket, user) -> None:
        self.socket = socket
        self.user = user
        self.watched: dict[str, PresenceFilter | None] = {}  # None: snapshot to come

    @property
    def socket_id(self) -> str:
        return self.socket.channel_name

    # --- told by StreamSubscriptions ------------------------------------------

    async def watch(self, stream: Stream, *, wanted: bool) -> bool:
        """Before the subscription is read: join or leave the presence group.

        False when joining failed (the socket is closing).
        """
        if wanted and stream.name not in self.watched:
            if not await self.socket.group_join(stream.presence_group):
                return False
            self.watched[stream.name] = None
        elif not wanted and stream.name in self.watched:
            await self._unwatch(stream)
        return True

    async def subscribed(self, stream: Stream) -> None:
        """The socket is on `stream`: count it (every socket counts, watching or not)."""
        registry = registry_get()
        await presence_broadcast(
            [await registry.stream_join(self.socket_id, stream.name)]
        )

    async def snapshot_send(self, stream: Stream) -> None:
        """After `subscribed` and any replay: the snapshot, if this socket watches."""
        if stream.name not in self.watched:
            return
        snapshot = await registry_get().snapshot(stream.name)
        self.watched[stream.name] = PresenceFilter(snapshot)
        await self.socket.send_frame(
            ServerFrame.PRESENCE, stream=stream.name, **snapshot.payload()
        )

    async def ended(self, stream: Stream) -> None:
        """Unsubscribed, or the right is gone: stop watching, stop counting."""
        if stream.name in self.watched:
            await self._unwatch(stream)
        registry = registry_get()
        await presence_broadcast(
            [await registry.stream_leave(self.socket_id, stream.name)]
        )

    # --- the `presence` frame ---------------------------------------------------

    async def requested(self, frame: dict) -> bool:
        """Answer a snapshot of any stream the user may read; False: forbidden."""
        stream = stream_parse(frame["stream"], user_id=self.user.pk)
        if stream is None or not stream.keeps_presence:
            return False
        decision = await database_sync_to_async(stream_access)(
            user=self.user, stream=stream, action=Action.READ
        )
        if not decision.allowed:
            return False
        snapshot = await registry_get().snapshot(stream.name)
        await self.socket.send_frame(
            ServerFrame.PRESENCE, frame, stream=stream.name, **snapshot.payload()
        )
        return True

    # --- channel-layer events ---------------------------------------------------

    async def changes_arrived(self, event: dict) -> None:
        """One window's joins and leaves from any process: each passed on once."""
        view = self.watched.get(event["stream"])
        if view is None:
            return
        for change, text in batch_changes(event):
            if change.socket_id != self.socket_id and view.accept(change):
                await self.socket.send(text_data=text)

    async def resync(self, event: dict) -> None:
        """The shared state was rebuilt: a fresh snapshot replaces the client's view.

        The sockets of this process share one read; a socket whose view is
        newer than that read (a change arrived first) reads its own.
        """
        name = event["stream"]
        view = self.watched.get(name)
        if view is None:
            return
        registry = registry_get()
        render = partial(snapshot_frame, name)
        snapshot, text = await registry.snapshot_shared(name, render)
        if snapshot.version < view.newest:
            snapshot = await registry.snapshot(name)
            text = render(snapshot)
        view.reset(snapshot)
        await self.socket.send(text_data=text)

    async def _unwatch(self, stream: Stream) -> None:
        del self.watched[stream.name]
        await self.socket.group_leave(stream.presence_group)


def snapshot_frame(stream: str, snapshot: Snapshot) -> str:
    """An unprompted `presence` frame (docs/protocol.md §4.4), no `ref`."""
    return dumps({"type": ServerFrame.PRESENCE, "stream": stream, **snapshot.payload()})
