"""What the registry of live sockets answers: typed, transport-free values.

The registry decides; its callers turn these into frames (docs/protocol.md
§4.4) and broadcast them. Nothing here knows about sockets or groups.
"""

import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import NamedTuple

BATCH_EVENT = "presence.changes"  # channel-layer types: handlers presence_changes,
RESYNC_EVENT = "presence.resync"  # presence_resync


class Change(StrEnum):
    JOIN = "join"
    LEAVE = "leave"


class PresenceChange(NamedTuple):
    """A user's first socket arrived on a stream, or his last one left.

    `version` orders every change of one stream (a receiver drops what is
    older than its snapshot or than the user's last change); `socket_id` is
    the socket that caused it, None when a dead process was cleaned up.

    On a leave, `joined` is the version of the join that began the presence it
    ends, as the store recorded it (None when unknown: an outage). The outbox
    sets `hidden_since` on a leave no watcher with an older snapshot was ever
    shown the start of (realtime/presence/outbox.py): such watchers skip it.

    A named tuple: two are made per subscribe and unsubscribe with presence,
    and a tuple is made several times faster than a frozen dataclass.
    """

    kind: Change
    stream: str
    user_id: int
    username: str
    version: int
    socket_id: str | None = None
    joined: int | None = None
    hidden_since: int | None = None

    @property
    def user(self) -> dict:
        return {"id": self.user_id, "username": self.username}

    def hidden(self, since: int) -> "PresenceChange":
        """This change marked `hidden_since` (realtime/presence/outbox.py)."""
        return self._replace(hidden_since=since)

    def row(self) -> list:
        """Plain values, one row of a batch (msgpack and JSON safe)."""
        return [
            str(self.kind),
            self.user_id,
            self.username,
            self.version,
            self.socket_id,
        ]

    @classmethod
    def from_row(
        cls, stream: str, row: list, hidden_since: int | None = None
    ) -> "PresenceChange":
        kind, user_id, username, version, socket_id = row
        return cls(
            Change(kind),
            stream,
            user_id,
            username,
            version,
            socket_id,
            hidden_since=hidden_since,
        )


def batch_event(stream: str, changes: list[PresenceChange], texts: list[str]) -> dict:
    """One channel-layer message carrying a stream's changes of one window.

    Each change travels with `texts`' frame for it, serialized once for every
    receiver. The rows travel as one JSON string: a layer copies or encodes a
    message once per receiving socket, and a string costs that nothing to copy.
    The `hidden_since` marks travel beside the rows, as (row, version) pairs:
    a receiver that does not know them passes every row through its filter.
    """
    rows = [[*change.row(), text] for change, text in zip(changes, texts, strict=True)]
    event = {"type": BATCH_EVENT, "stream": stream, "changes": json.dumps(rows)}
    hidden = [
        [i, c.hidden_since] for i, c in enumerate(changes) if c.hidden_since is not None
    ]
    if hidden:
        event["hidden"] = json.dumps(hidden)
    return event


Told = tuple[tuple[PresenceChange, str], ...]  # changes with their frames


class Batch(NamedTuple):
    """A parsed `batch_event`, oldest first; shared by every watcher of the stream."""

    changes: Told
    announced: Told  # the changes without a `hidden_since` mark
    hidden_floor: int  # the smallest mark (0: none): older snapshots skip them all

    def for_snapshot(self, version: int) -> Told:
        """The changes a watcher whose snapshot has `version` must look at.

        A watcher whose snapshot is older than a leave's `hidden_since` was
        never shown that visit: the leave is no news to it, and is skipped
        here without a per-change look (a churning stream sends hundreds).
        """
        if version < self.hidden_floor:
            return self.announced
        if not self.hidden_floor:
            return self.changes
        return tuple(
            pair
            for pair in self.changes
            if pair[0].hidden_since is None or version >= pair[0].hidden_since
        )


def batch_changes(event: dict) -> Batch:
    """The changes of a `batch_event`, each with its frame.

    Every watcher of the stream on this process receives the same batch: it
    is parsed once for all of them (the layers hand each receiver the same
    rows string, whose hash Python keeps, so a repeat lookup costs nothing).
    """
    return _batch_parsed(event["stream"], event["changes"], event.get("hidden"))


@lru_cache(maxsize=64)
def _batch_parsed(stream: str, rows: str, hidden: str | None) -> Batch:
    marks = dict(json.loads(hidden)) if hidden else {}
    changes = tuple(
        (PresenceChange.from_row(stream, row[:-1], marks.get(i)), row[-1])
        for i, row in enumerate(json.loads(rows))
    )
    announced = tuple(pair for pair in changes if pair[0].hidden_since is None)
    return Batch(changes, announced, min(marks.values(), default=0))


@dataclass(frozen=True, slots=True)
class Resync:
    """The shared state of `stream` was rebuilt: receivers take a fresh snapshot."""

    stream: str

    def event(self) -> dict:
        return {"type": RESYNC_EVENT, "stream": self.stream}


PresenceEvent = PresenceChange | Resync


class PresentUser(NamedTuple):
    """One user of a snapshot, as a value (HTTP answers, `presence` requests)."""

    id: int
    username: str
    connections: int


@lru_cache(maxsize=4096)  # a user's name is encoded on each of his joins
def name_encode(username: str) -> str:
    """A username as JSON text, the form the stores keep it in for `user_part`.

    ASCII, with every other character escaped: a name the user model let
    through with a lone surrogate still makes text UTF-8 can carry, to
    Redis and in the frame (as the join and leave batches already do).
    """
    return json.dumps(username)


def user_part(user_id: int, name_json: str, connections: int) -> str:
    """One user as a snapshot lists him: `{"id":…,"username":…,"connections":…}`.

    Made when his count or name changes, not for every snapshot: a snapshot
    is a join of these. The Redis store's join and leave scripts build the
    very same text (`_PLACE` in realtime/presence/redis_store.py), checked by
    a test of both stores; `Snapshot.lists` finds a user by its beginning.
    """
    return f'{{"id":{user_id},"username":{name_json},"connections":{connections}}}'


_PART_ID = re.compile(r'\{"id":(\d+),')  # a part's beginning (see `Snapshot.lists`)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Who is on a stream; `version` is the newest change it reflects.

    `listed` is its users as the frame lists them: their parts (`user_part`),
    sorted by id, joined by commas, the `users` array without its brackets.
    Every subscribe with presence is answered with a snapshot of up to 1,000
    users: kept as one text, it goes into the frame as it is, where hundreds
    of values per subscribe would each be hashed or serialized, and Redis
    sends it as one string rather than hundreds to parse. `ids` are the
    same users' ids, when the store keeps them at hand (the memory store
    does): a receiver bisects them (realtime/presence/ordering.py).
    """

    listed: str
    count: int
    version: int
    truncated: bool = False
    ids: list[int] | None = None

    def lists(self, user_id: int) -> bool:
        """Whether the user is among those listed: a search of the text, in C.

        A part begins `{"id":<id>,`; a name cannot hold that text, as JSON
        escapes its quotes. Linear in the text (about 6 µs for 200 users,
        30 µs for 1,000): for a few lookups, not for many (`listed_ids`).
        """
        return f'{{"id":{user_id},' in self.listed

    def listed_ids(self) -> list[int]:
        """The listed users' ids, in order: `ids`, or read out of the text
        (about 75 µs for 200 users, so only once a view looks up many)."""
        if self.ids is not None:
            return self.ids
        return [int(user_id) for user_id in _PART_ID.findall(self.listed)]

    @property
    def users(self) -> list[PresentUser]:
        return [PresentUser(**user) for user in self._decoded()]

    def payload(self) -> dict:
        """The body shared by the `presence` frame and the HTTP endpoints."""
        body = {"users": self._decoded(), "count": self.count}
        if self.truncated:
            body["truncated"] = True
        return body

    def _decoded(self) -> list[dict]:
        return json.loads(f"[{self.listed}]")


@dataclass(frozen=True, slots=True)
class SessionConnections:
    id: str
    connections: int


@dataclass(frozen=True, slots=True)
class UserConnections:
    """A user's live sockets on every process, per login session."""

    connections: int = 0
    sessions: list[SessionConnections] = field(default_factory=list)

    def payload(self) -> dict:
        return {
            "connections": self.connections,
            "sessions": [
                {"id": s.id, "connections": s.connections} for s in self.sessions
            ],
        }


@dataclass(frozen=True, slots=True)
class ConnectedUser:
    """One row of the admin's "connected now"."""

    id: int
    username: str
    connections: int
    sessions: list[SessionConnections]


@dataclass(frozen=True, slots=True)
class SocketEntry:
    """A live socket as the store records it."""

    user_id: int
    sid: str
    username: str


@dataclass
class ProcessEntries:
    """Everything one process recorded: its sockets and their streams."""

    sockets: dict[str, SocketEntry] = field(default_factory=dict)
    streams: dict[tuple[str, str], int] = field(default_factory=dict)
    # (socket_id, stream) → user id
