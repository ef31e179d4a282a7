"""Names of the wire contract the client switches on (docs/protocol.md).

A copy of the server's constants, kept here so the client installs without
the server; tests assert the two agree.
"""

import json
from enum import IntEnum
from typing import Any, TypeGuard

from authsocket_client.errors import NotJson

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


def is_user(value: object) -> TypeGuard[dict[str, Any]]:
    """A user of the contract (a message's `sender`, a token answer's
    `user`): an object with an integer `id`."""
    return isinstance(value, dict) and is_id(value.get("id"))


def strict_json(value: Any) -> str:
    """`value` as the text of a frame: strict JSON (RFC 8259: no NaN nor
    infinity) that encodes as UTF-8 (no lone surrogate). Python's json
    writes both by default, and the server cannot parse them: NotJson."""
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
        text.encode()
    except (ValueError, TypeError, RecursionError) as exc:
        raise NotJson(f"{type(exc).__name__}: {exc}") from None
    return text
