"""Which presence changes a receiving socket passes on, after its snapshot.

The order (docs/streams.md, "Presence"): a socket that wants presence joins
the stream's presence group, registers itself (`stream_join`), then reads the
snapshot. Every change numbered after the snapshot is broadcast after the
group was joined, so none is lost; every change at or before the snapshot's
version is already in it and is dropped here, so none is doubled. Changes of
one user may arrive out of order from two processes: an older one than the
last applied for that user is dropped too.
"""

from realtime.presence.events import PresenceChange, Snapshot


class PresenceFilter:
    """One socket's view of one stream: pass each change at most once, in order."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.reset(snapshot)

    def reset(self, snapshot: Snapshot) -> None:
        """A fresh snapshot (first one, or after a resync) replaces the view."""
        self.version = snapshot.version
        self._last: dict[int, int] = {}

    def accept(self, change: PresenceChange) -> bool:
        if change.version <= max(self.version, self._last.get(change.user_id, 0)):
            return False
        self._last[change.user_id] = change.version
        return True
