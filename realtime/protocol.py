"""Names of the wire protocol, as documented in docs/protocol.md §4.

Everything a client can switch on (close codes, error codes, frame types,
stream prefixes, subprotocols) is a named constant here and nowhere else.
"""

from enum import IntEnum, StrEnum


class CloseCode(IntEnum):
    """§4.3. Only 1000 and 3000–4999 pass through daphne; reasons are dropped."""

    IDLE = 1000
    INTERNAL_ERROR = 1011
    TOKEN_EXPIRED = 4401
    REVOKED = 4403
    TOO_MANY_CONNECTIONS = 4409
    MESSAGE_TOO_BIG = 4413
    BINARY_FRAME = 4415
    RATE_LIMITED = 4429
    SHUTTING_DOWN = 4503


class ErrorCode(StrEnum):
    """`{"type": "error", "code": ...}` values of §4.2."""

    BAD_REQUEST = "bad_request"
    UNKNOWN_TYPE = "unknown_type"
    FORBIDDEN = "forbidden"
    INVALID_TOKEN = "invalid_token"
    RATE_LIMITED = "rate_limited"
    TOO_MANY_SUBSCRIPTIONS = "too_many_subscriptions"


class ClientFrame(StrEnum):
    PING = "ping"
    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"
    PUBLISH = "publish"
    AUTH = "auth"
    PRESENCE = "presence"


class ServerFrame(StrEnum):
    WELCOME = "welcome"
    PONG = "pong"
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"
    PUBLISHED = "published"
    MESSAGE = "message"
    REPLAY_TRUNCATED = "replay.truncated"
    AUTH_OK = "auth.ok"
    AUTH_EXPIRING = "auth.expiring"
    ERROR = "error"
    PRESENCE = "presence"  # a snapshot: answer, after `subscribed`, or unprompted
    PRESENCE_JOIN = "presence.join"
    PRESENCE_LEAVE = "presence.leave"


class Transport(StrEnum):
    """How the handshake carried its credential (§4.1), in precedence order."""

    SUBPROTOCOL = "subprotocol"
    HEADER = "header"
    TICKET = "ticket"
    QUERY_TOKEN = "query"


# The version of the wire contract this process speaks, sent in `welcome`: during
# a rolling deploy a client can tell a process that ignores newer fields.
PROTOCOL_VERSION = "1.1"

SUBPROTOCOL = "authsocket.v1"
TOKEN_SUBPROTOCOL_PREFIX = "authsocket.token."

USER_KIND = "user"  # the built-in stream kinds (realtime/stream_kinds.py)
ROOM_KIND = "room"
USER_STREAM = "user"  # the bare alias: the caller's own `user:<id>`
USER_STREAM_PREFIX = "user:"
ROOM_STREAM_PREFIX = "room:"

# --- frames (§4.2) ------------------------------------------------------------

# A frame is at most 64 deep (core.strict_json.MAX_DEPTH); `data` sits one
# level inside it, on every interface (REST-posted data is delivered on sockets).
MAX_DATA_DEPTH = 63

# --- streams (§4.2) -----------------------------------------------------------

MAX_STREAM_NAME_LENGTH = 128
# Lowercase so that group names (`room.<slug>`) stay short and unambiguous.
ROOM_SLUG_PATTERN = r"[a-z0-9][a-z0-9_-]{0,63}"
USER_ID_PATTERN = r"[1-9][0-9]{0,18}"
UNSUBSCRIBED_FORBIDDEN = "forbidden"  # `reason` of a server-side `unsubscribed`


class StreamEvent(StrEnum):
    """Channel-layer event types of streams (handler = type with `.` → `_`)."""

    MESSAGE = "stream.message"  # a stored message, its frame pre-serialized
    REVOKE = "stream.revoke"  # a right to read may have been lost: re-check


class SessionEvent(StrEnum):
    """Channel-layer event types of sessions, sent to `user.<id>` groups."""

    # Not "session.revoked", the event of the per-session groups that came
    # before: a process still running that version has no handler for this
    # name and closes the socket 1011 (the client reconnects), rather than
    # closing every socket of the user with 4403 (as if it were logged out).
    REVOKED = "sessions.revoked"  # names its `sids`; a socket closes if named


# --- presence (§4.4) ----------------------------------------------------------

PRESENCE_SNAPSHOT_LIMIT = 1000  # users listed in one snapshot; `count` is the total
