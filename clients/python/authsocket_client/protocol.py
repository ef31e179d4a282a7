"""Names of the wire contract the client switches on (docs/protocol.md).

A copy of the server's constants, kept here so the client installs without
the server; tests assert the two agree.
"""

from enum import IntEnum
from typing import TypeGuard

SUBPROTOCOL = "authsocket.v1"
TOKEN_SUBPROTOCOL_PREFIX = "authsocket.token."
USER_STREAM = "user"
DEFAULT_URL = "http://127.0.0.1:8000"


class CloseCode(IntEnum):
    """WebSocket close codes; daphne drops reasons, so the code is all we get."""

    NORMAL = 1000
    ABNORMAL = 1006
    INTERNAL_ERROR = 1011
    TOKEN_EXPIRED = 4401
    REVOKED = 4403
    TOO_MANY_CONNECTIONS = 4409
    MESSAGE_TOO_BIG = 4413
    BINARY_FRAME = 4415
    RATE_LIMITED = 4429
    SHUTTING_DOWN = 4503


TRANSPORTS = ("header", "subprotocol", "ticket", "query")


def is_id(value: object) -> TypeGuard[int]:
    """A user or message id of the contract: an integer (a bool is not one)."""
    return isinstance(value, int) and not isinstance(value, bool)
