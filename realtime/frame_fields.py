"""Field types of client frames (docs/protocol.md): a wrong type is `bad_request`.

Checked once, before a frame reaches its handler, so that e.g. an `auth` frame
whose `token` is not a string is a malformed frame, not an invalid token.
`ref` may be any JSON value and unknown fields are ignored.
"""

from collections.abc import Callable
from dataclasses import dataclass

from realtime.protocol import ClientFrame


def _any(value: object) -> bool:
    return True


def _string(value: object) -> bool:
    return isinstance(value, str)


def _boolean(value: object) -> bool:
    return isinstance(value, bool)


def _message_id(value: object) -> bool:
    """A non-negative integer; JSON `true` is not 1."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@dataclass(frozen=True)
class Field:
    valid: Callable[[object], bool]
    expected: str  # how the error names the type
    required: bool = True
    nullable: bool = False  # an optional field sent as null counts as absent


STREAM = Field(_string, "a string")

FIELDS: dict[str, dict[str, Field]] = {
    ClientFrame.PING: {},
    ClientFrame.SUBSCRIBE: {
        "stream": STREAM,
        "since": Field(_message_id, "a message id", required=False, nullable=True),
        "presence": Field(_boolean, "a boolean", required=False),
    },
    ClientFrame.UNSUBSCRIBE: {"stream": STREAM},
    ClientFrame.PUBLISH: {"stream": STREAM, "data": Field(_any, "any JSON")},
    ClientFrame.AUTH: {"token": Field(_string, "a string")},
}


def frame_problem(frame: dict) -> str | None:
    """What is wrong with the fields of a frame of a known type, or None."""
    for name, field in FIELDS.get(frame["type"], {}).items():
        if name not in frame:
            if field.required:
                return f'"{name}" is required in a {frame["type"]} frame.'
            continue
        value = frame[name]
        if value is None and field.nullable:
            continue
        if not field.valid(value):
            return f'"{name}" must be {field.expected}.'
    return None
