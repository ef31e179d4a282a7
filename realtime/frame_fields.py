"""Field types of client frames (docs/protocol.md): a wrong type is `bad_request`.

Checked once, before a frame reaches its handler, so that e.g. an `auth` frame
whose `token` is not a string is a malformed frame, not an invalid token.
`ref` may be any JSON value and unknown fields are ignored. A project's own
frame types declare their fields with the same `Field`s (docs/extending.md).
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from realtime.protocol import ClientFrame


def _any(value: object) -> bool:
    return True


def _string(value: object) -> bool:
    return isinstance(value, str)


def _boolean(value: object) -> bool:
    return isinstance(value, bool)


def _integer(value: object) -> bool:
    """JSON `true` is not 1."""
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _object(value: object) -> bool:
    return isinstance(value, dict)


def _message_id(value: object) -> bool:
    """A non-negative integer; JSON `true` is not 1."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@dataclass(frozen=True)
class Field:
    valid: Callable[[object], bool]
    expected: str  # how the error names the type
    required: bool = True
    nullable: bool = False  # an optional field sent as null counts as absent

    def optional(self, *, nullable: bool = False) -> "Field":
        """The same type, which a frame may leave out (or send as null)."""
        return replace(self, required=False, nullable=nullable)


ANY = Field(_any, "any JSON")
STRING = Field(_string, "a string")
BOOLEAN = Field(_boolean, "a boolean")
INTEGER = Field(_integer, "an integer")
NUMBER = Field(_number, "a number")
OBJECT = Field(_object, "an object")
STREAM = STRING

FIELDS: dict[str, dict[str, Field]] = {
    ClientFrame.PING: {},
    ClientFrame.SUBSCRIBE: {
        "stream": STREAM,
        "since": Field(_message_id, "a message id", required=False, nullable=True),
        "presence": Field(_boolean, "a boolean", required=False),
    },
    ClientFrame.UNSUBSCRIBE: {"stream": STREAM},
    ClientFrame.PUBLISH: {"stream": STREAM, "data": ANY},
    ClientFrame.AUTH: {"token": STRING},
    ClientFrame.PRESENCE: {"stream": STREAM},
}


def frame_problem(frame: dict, fields: Mapping[str, Field] | None = None) -> str | None:
    """What is wrong with a frame's `fields` (default: its built-in type's), or None."""
    if fields is None:
        fields = FIELDS.get(frame["type"], {})
    for name, field in fields.items():
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
