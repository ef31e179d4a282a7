"""One socket's presence (docs/protocol.md §4.4): snapshots, joins and leaves.

`StreamPresence` is owned by `StreamSubscriptions`, which tells it when a
stream of a kind with presence is subscribed, resubscribed or ended; it keeps
which streams this socket watches (one `PresenceFilter` each) and registers
the socket on them in the registry of live sockets. The order that keeps a
watcher from losing or doubling a change: watch through the process's relay
(its inbox joins the presence group), register the socket, then read the
snapshot (realtime/presence/ordering.py); the last two are one store call.

The relay hands batches over from its own task, so while a snapshot is being
read (the first one, or after a resync) a stream's batches wait in `held` and
are passed on, in order, right after the snapshot frame.
"""

from functools import lru_cache, partial

from autobahn.exception import Disconnected
from channels.db import database_sync_to_async

from realtime.frames import dumps
from realtime.permissions import Action, stream_access
from realtime.presence import registry_get
from realtime.presence.broadcast import presence_broadcast
from realtime.presence.events import (
    RESYNC_EVENT,
    Batch,
    Resync,
    Snapshot,
    batch_changes,
)
from realtime.presence.ordering import PresenceFilter
from realtime.presence.relay import relay_for
from realtime.protocol import ServerFrame
from realtime.streams import Stream, stream_parse

# A send to a socket whose close has begun. ASGI asks servers for an OSError;
# daphne's WebSocket protocol (autobahn) raises its own `Disconnected`.
SOCKET_GONE = (OSError, Disconnected)


class StreamPresence:
    """Which streams this socket watches, and its place on every stream it is on.

    `socket` is the consumer: `channel_name` (its id in the registry),
    `channel_layer`, `send`, `send_frame` and `layer_failed` are all this uses.
    """

    def __init__(self, *, socket, user) -> None:
        self.socket = socket
        self.user = user
        self.watched: dict[str, PresenceFilter | None] = {}  # None: snapshot to come
        self.held: dict[str, list[dict]] = {}  # stream → events waiting for a snapshot
        self.read_ahead: dict[str, Snapshot] = {}  # read with the join, sent later

    @property
    def socket_id(self) -> str:
        return self.socket.channel_name

    # --- told by StreamSubscriptions ------------------------------------------

    async def watch(self, stream: Stream, *, wanted: bool) -> bool:
        """Before the subscription is read: join or leave the presence group.

        False when joining failed (the socket is closing).
        """
        name = stream.name
        if wanted and name not in self.watched:
            self.watched[name] = None
            self.held[name] = []
            relay = relay_for(self.socket.channel_layer)
            try:
                await relay.watch(name, stream.presence_group, self)
            except Exception as exc:
                self._forget(name)
                await self.socket.layer_failed("group_add", exc)
                return False
        elif not wanted and name in self.watched:
            await self._unwatch(stream.name)
        return True

    async def subscribed(self, stream: Stream) -> None:
        """The socket is on `stream`: count it (every socket counts, watching or not).

        A socket that starts watching reads its first snapshot in the same
        step (one round trip to Redis, not two); `snapshot_send` sends it.
        """
        registry, name = registry_get(), stream.name
        if name in self.watched and self.watched[name] is None:
            change, self.read_ahead[name] = await registry.stream_join_read(
                self.socket_id, name
            )
        else:
            change = await registry.stream_join(self.socket_id, name)
        presence_broadcast([change])

    async def snapshot_send(self, stream: Stream) -> None:
        """After `subscribed` and any replay: the snapshot, if this socket watches.

        Batches that arrive meanwhile wait and follow the snapshot frame,
        filtered by it: none is lost or doubled, and none overtakes it.
        """
        name = stream.name
        snapshot = self.read_ahead.pop(name, None)
        if name not in self.watched:
            return
        if self.watched[name] is None:  # the first: `watch` began holding
            held = self.held[name]
        elif name in self.held:  # a resync's snapshot is under way: one more after it
            self.held[name].append(Resync(name).event())
            return
        else:  # subscribed again: a fresh snapshot replaces the view
            held = self.held[name] = []
        if snapshot is None:  # subscribed again: it lists this socket's user too
            snapshot = await registry_get().snapshot(name, include=self.user.pk)
        self.watched[name] = PresenceFilter(snapshot)
        await self.socket.send(text_data=snapshot_frame(name, snapshot))
        await self._drain(name, held)

    async def ended(self, stream: Stream) -> None:
        """Unsubscribed, or the right is gone: stop watching, stop counting."""
        if stream.name in self.watched:
            await self._unwatch(stream.name)
        registry = registry_get()
        presence_broadcast([await registry.stream_leave(self.socket_id, stream.name)])

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
        snapshot = await registry_get().snapshot(stream.name, include=self.user.pk)
        await self.socket.send_frame(
            ServerFrame.PRESENCE, frame, stream=stream.name, **snapshot.payload()
        )
        return True

    # --- channel-layer events ---------------------------------------------------

    def unconcerned(self, name: str, batch: Batch) -> bool:
        """True when nothing in `batch` is for this socket to look at: its
        snapshot of `name` is out, and every change of the batch is hidden
        from it (`Batch.for_snapshot`: a watcher of a churning stream, most
        windows)."""
        view = self.watched.get(name)
        return (
            view is not None
            and name not in self.held
            and not batch.for_snapshot(view.version)
        )

    async def changes_arrived(self, event: dict) -> None:
        """One window's joins and leaves from any process: each passed on once."""
        name = event["stream"]
        held = self.held.get(name)
        if held is not None:  # a snapshot is on its way: after it
            held.append(event)
        else:
            await self._pass_on(name, event)

    async def resync(self, event: dict, shared: dict) -> None:
        """The shared state was rebuilt: a fresh snapshot replaces the client's view.

        `shared` is what the watchers of one round share: the snapshot is
        read and rendered once for them all.
        """
        name = event["stream"]
        if name not in self.watched:
            return
        held = self.held.get(name)
        if held is not None:  # behind the snapshot under way, in order
            held.append(event)
            return
        held = self.held[name] = []
        await self._resnapshot(name, shared)
        await self._drain(name, held)

    async def closed(self) -> None:
        """The socket is gone: the relay stops handing it anything."""
        relay = relay_for(self.socket.channel_layer)
        for name in list(self.watched):
            self._forget(name)
            await relay.unwatch(name, self)

    # --- helpers -----------------------------------------------------------------

    async def _pass_on(self, name: str, event: dict) -> None:
        view = self.watched.get(name)
        if view is None:
            return
        for _, text in view.told(batch_changes(event), self.socket_id):
            if self.watched.get(name) is not view:  # unwatched meanwhile
                return
            if not await self._sent(name, text):
                return

    async def _resnapshot(self, name: str, shared: dict) -> None:
        """The round's read, unless this socket was told of a change newer
        than it: then a read for the rest of the round, this socket first.
        Cut without this socket's user, it reads one of its own."""
        view = self.watched.get(name)
        if view is None:
            return
        snapshot, text = await self._shared_read(name, shared)
        if snapshot.version < view.newest:  # not a shared read: one may be under way
            snapshot = await registry_get().snapshot(name)
            text = snapshot_frame(name, snapshot)
            shared["read"] = snapshot, text
        if snapshot.truncated and not snapshot.lists(self.user.pk):
            snapshot, text = await self._own_read(name)
        if self.watched.get(name) is not view:  # unwatched meanwhile
            return
        view.reset(snapshot)
        await self._sent(name, text)

    async def _own_read(self, name: str) -> tuple[Snapshot, str]:
        """A snapshot that lists this socket's user, when the round's was cut
        without him: every snapshot a watcher gets includes itself (§4.4)."""
        snapshot = await registry_get().snapshot(name, include=self.user.pk)
        return snapshot, snapshot_frame(name, snapshot)

    @staticmethod
    async def _shared_read(name: str, shared: dict) -> tuple[Snapshot, str]:
        if "read" not in shared:
            render = partial(snapshot_frame, name)
            shared["read"] = await registry_get().snapshot_shared(name, render)
        return shared["read"]

    async def _drain(self, name: str, held: list[dict] | None) -> None:
        """Pass on what waited behind a snapshot, then let batches come directly.

        `held` is the list this watch began with: a stream unwatched and
        watched again meanwhile has a new one, which is not ours to drain.
        """
        while held and self.held.get(name) is held:
            event = held.pop(0)
            if event["type"] == RESYNC_EVENT:
                await self._resnapshot(name, {})
            else:
                await self._pass_on(name, event)
        if held is not None and self.held.get(name) is held:
            del self.held[name]

    async def _sent(self, name: str, text: str) -> bool:
        """Send from the relay's task; False when the socket's close has begun.

        The relay runs beside the socket's own task, so a close can overtake
        a batch: nothing is wrong then, and nothing is logged. The socket
        stops watching (it will never be sent to again); its disconnect
        removes it from the registry as usual.
        """
        try:
            await self.socket.send(text_data=text)
        except SOCKET_GONE:
            await self._unwatch(name)
            return False
        return True

    def _forget(self, name: str) -> None:
        self.watched.pop(name, None)
        self.held.pop(name, None)
        self.read_ahead.pop(name, None)

    async def _unwatch(self, name: str) -> None:
        self._forget(name)
        await relay_for(self.socket.channel_layer).unwatch(name, self)


def snapshot_frame(stream: str, snapshot: Snapshot) -> str:
    """An unprompted `presence` frame (docs/protocol.md §4.4), no `ref`.

    Every subscribe with presence is answered with one, listing up to 1,000
    users: they come rendered from the store (`Snapshot.listed`), so the
    frame is one f-string. (A `presence` request, rare and with its `ref`,
    is answered through `send_frame` with `Snapshot.payload()`.)
    """
    cut = ',"truncated":true' if snapshot.truncated else ""
    head, users = _snapshot_head(stream), snapshot.listed
    return f'{head},"count":{snapshot.count}{cut},"users":[{users}]}}'


@lru_cache(maxsize=4096)  # a stream's frames all begin alike
def _snapshot_head(stream: str) -> str:
    """`{"type":"presence","stream":…` with the stream's name as JSON, unclosed."""
    return dumps({"type": ServerFrame.PRESENCE, "stream": stream})[:-1]
