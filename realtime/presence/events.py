"""What the registry of live sockets answers: typed, transport-free values.

The registry decides; its callers turn these into frames (docs/protocol.md
§4.4) and broadcast them. Nothing here knows about sockets or groups.
"""

import json
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import NamedTuple

BATCH_EVENT = "presence.changes"  # channel-layer types: handlers presence_changes,
RESYNC_EVENT = "presence.resync"  # presence_resync


class Change(StrEnum):
    JOIN = "join"
    LEAVE = "leave"


@dataclass(frozen=True, slots=True)
class PresenceChange:
    """A user's first socket arrived on a stream, or his last one left.

    `version` orders every change of one stream (a receiver drops what is
    older than its snapshot or than the user's last change); `socket_id` is
    the socket that caused it, None when a dead process was cleaned up.
    """

    kind: Change
    stream: str
    user_id: int
    username: str
    version: int
    socket_id: str | None = None

    @property
    def user(self) -> dict:
        return {"id": self.user_id, "username": self.username}

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
    def from_row(cls, stream: str, row: list) -> "PresenceChange":
        kind, user_id, username, version, socket_id = row
        return cls(Change(kind), stream, user_id, username, version, socket_id)


def batch_event(stream: str, changes: list[PresenceChange], texts: list[str]) -> dict:
    """One channel-layer message carrying a stream's changes of one window.

    Each change travels with `texts`' frame for it, serialized once for every
    receiver. The rows travel as one JSON string: a layer copies or encodes a
    message once per receiving socket, and a string costs that nothing to copy.
    """
    rows = [[*change.row(), text] for change, text in zip(changes, texts, strict=True)]
    return {"type": BATCH_EVENT, "stream": stream, "changes": json.dumps(rows)}


def batch_changes(event: dict) -> tuple[tuple[PresenceChange, str], ...]:
    """The changes of a `batch_event`, oldest first, each with its frame.

    Every watcher of the stream on this process receives the same batch: it
    is parsed once for all of them (the layers hand each receiver the same
    rows string, whose hash Python keeps, so a repeat lookup costs nothing).
    """
    return _batch_parsed(event["stream"], event["changes"])


@lru_cache(maxsize=64)
def _batch_parsed(stream: str, rows: str) -> tuple[tuple[PresenceChange, str], ...]:
    return tuple(
        (PresenceChange.from_row(stream, row[:-1]), row[-1]) for row in json.loads(rows)
    )


@dataclass(frozen=True, slots=True)
class Resync:
    """The shared state of `stream` was rebuilt: receivers take a fresh snapshot."""

    stream: str

    def event(self) -> dict:
        return {"type": RESYNC_EVENT, "stream": self.stream}


PresenceEvent = PresenceChange | Resync


class PresentUser(NamedTuple):
    """One user of a snapshot. A tuple: built 200 at a time for every
    subscribe with presence, and the key of each user's rendered part
    (realtime/presence_frames.py), it must be cheap to make and to hash."""

    id: int
    username: str
    connections: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Who is on a stream; `version` is the newest change it reflects."""

    users: list[PresentUser]
    count: int
    version: int
    truncated: bool = False

    def payload(self) -> dict:
        """The body shared by the `presence` frame and the HTTP endpoints."""
        body = {
            "users": [
                {"id": u.id, "username": u.username, "connections": u.connections}
                for u in self.users
            ],
            "count": self.count,
        }
        if self.truncated:
            body["truncated"] = True
        return body


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
