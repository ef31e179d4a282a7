"""What the registry of live sockets answers: typed, transport-free values.

The registry decides; its callers turn these into frames (docs/protocol.md
§4.4) and broadcast them. Nothing here knows about sockets or groups.
"""

from dataclasses import dataclass, field
from enum import StrEnum

CHANGE_EVENT = "presence.change"  # channel-layer types: handlers presence_change,
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

    def event(self) -> dict:
        """A channel-layer message (plain values only) for the stream's receivers."""
        return {
            "type": CHANGE_EVENT,
            "stream": self.stream,
            "kind": str(self.kind),
            "user": self.user,
            "version": self.version,
            "socket": self.socket_id,
        }

    @classmethod
    def from_event(cls, event: dict) -> "PresenceChange":
        user = event["user"]
        return cls(
            Change(event["kind"]),
            event["stream"],
            user["id"],
            user["username"],
            event["version"],
            event.get("socket"),
        )


@dataclass(frozen=True, slots=True)
class Resync:
    """The shared state of `stream` was rebuilt: receivers take a fresh snapshot."""

    stream: str

    def event(self) -> dict:
        return {"type": RESYNC_EVENT, "stream": self.stream}


PresenceEvent = PresenceChange | Resync


@dataclass(frozen=True, slots=True)
class PresentUser:
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
