"""Which presence changes a receiving socket passes on, after its snapshot.

The order (docs/streams.md, "Presence"): a socket that wants presence joins
the stream's presence group, registers itself (`stream_join`), then reads the
snapshot. Every change numbered after the snapshot is broadcast after the
group was joined, so none is lost; every change at or before the snapshot's
version is already in it and is dropped here, so none is doubled. Changes of
one user may arrive out of order from two processes (and a process sends
only a user's newest change of each window): an older one than the last
applied for that user is dropped too.

A change that does not alter what the client was told is not passed on: a
join of someone it already shows (its own user, or a user who left and came
back within one window), a leave of someone it does not show. So a client
sees every user's arrivals and departures alternate, never one told twice.
"""

from bisect import bisect_left
from collections.abc import Iterator

from realtime.presence.events import (
    Batch,
    Change,
    PresenceChange,
    Snapshot,
)

# Versions are microseconds. A change this much older than the newest one seen
# can no longer arrive (channel layers expire messages after 60 s), so the
# per-user versions older than it are folded away: a socket watching a busy
# stream for days keeps what differs from its snapshot, not every visitor.
FORGET_AFTER_US = 120 * 1_000_000
FOLD_EVERY = 256  # accepted changes between two folds
# Lookups of a snapshot without ids searched in its text before its ids are
# read out of it once: a search costs about a tenth of the reading, so a
# view that looks up few users never pays for it, and one that looks up
# many (a big room in a busy window) pays at most twice the least.
SEARCHES_BEFORE_INDEX = 8


class PresenceFilter:
    """One socket's view of one stream: pass each change at most once, in order."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.reset(snapshot)

    def reset(self, snapshot: Snapshot) -> None:
        """A fresh snapshot (first one, or after a resync) replaces the view."""
        self.version = snapshot.version
        self.newest = snapshot.version  # the newest change this view reflects
        # Searched in place (a subscribe with presence makes one filter from
        # a snapshot of up to 1,000 users, most never looked up): a bisect of
        # its ids when the store gave them, else text searches, then its ids.
        self._snapshot = snapshot
        self._ids = snapshot.ids
        self._searches_left = SEARCHES_BEFORE_INDEX
        self._last: dict[int, tuple[int, bool]] = {}  # user → (version, present)
        self._folded: dict[int, bool] = {}  # user → present, where it differs
        self._until_fold = FOLD_EVERY

    def told(
        self, batch: Batch, socket_id: str | None
    ) -> Iterator[tuple[PresenceChange, str]]:
        """The changes of `batch` the client of `socket_id` must be told, in order.

        Never one of its own socket; leaves of visits it was never shown are
        not even looked at (`Batch.for_snapshot`).
        """
        for change, text in batch.for_snapshot(self.version):
            if change.socket_id != socket_id and self.accept(change):
                yield change, text

    def accept(self, change: PresenceChange) -> bool:
        """True when the client must be told: the change is newer and alters its view."""
        version, shown = self._last.get(change.user_id, (self.version, None))
        if change.version <= max(version, self.version):
            return False
        if shown is None:
            shown = self._folded.get(change.user_id)
        if shown is None:
            shown = self._in_snapshot(change.user_id)
        present = change.kind is Change.JOIN
        self._last[change.user_id] = (change.version, present)
        self.newest = max(self.newest, change.version)
        self._until_fold -= 1
        if self._until_fold <= 0:
            self._fold()
        return shown is not present  # None (a truncated snapshot): tell anyway

    def _fold(self) -> None:
        """Forget the versions of old changes, keeping each user's state."""
        self._until_fold = FOLD_EVERY
        horizon = self.newest - FORGET_AFTER_US
        for user_id, (version, present) in list(self._last.items()):
            if version > horizon:
                continue
            del self._last[user_id]
            if present is self._in_snapshot(user_id):
                self._folded.pop(user_id, None)
            else:
                self._folded[user_id] = present
        self.version = max(self.version, horizon)  # older changes: dropped

    def _in_snapshot(self, user_id: int) -> bool | None:
        """Whether the snapshot listed the user; None when it was cut and did not."""
        if self._listed(user_id):
            return True
        return None if self._snapshot.truncated else False

    def _listed(self, user_id: int) -> bool:
        ids = self._ids
        if ids is None:
            if self._searches_left > 0:
                self._searches_left -= 1
                return self._snapshot.lists(user_id)
            ids = self._ids = self._snapshot.listed_ids()
        i = bisect_left(ids, user_id)
        return i < len(ids) and ids[i] == user_id
