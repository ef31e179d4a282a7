"""The wire rules of docs/protocol.md written out again, independently of the code.

Property tests compare the server with these: strict JSON (depth, finite
doubles), the field types of client frames, and the accepted spellings of
`Authorization: Bearer`. Deliberately naive: plain recursion-free walks and
regular expressions, sharing nothing with core.strict_json,
realtime.frame_fields or accounts.bearer.
"""

import json
import math
import re

MAX_DEPTH = 64
NOT_STRICT = object()


def _refuse(name):
    raise ValueError(name)


def json_depth(value) -> int:
    deepest, pending = 0, [(value, 0)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level + 1)
            pending.extend((member, level + 1) for member in item)
        else:
            deepest = max(deepest, level)
    return deepest


def finite_number_literal(literal: str) -> bool:
    """A JSON number literal a browser would read as a finite double."""
    return math.isfinite(float(literal))


def _numbers_finite(value) -> bool:
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, bool) or item is None or isinstance(item, str):
            continue
        else:
            try:
                if not math.isfinite(float(item)):
                    return False
            except OverflowError:  # an int beyond doubles: Infinity in a browser
                return False
    return True


def strict_parse(text: str):
    """The parsed value of strict JSON text, or `NOT_STRICT`."""
    try:
        value = json.loads(text, parse_constant=_refuse)
    except (ValueError, RecursionError):
        return NOT_STRICT
    if json_depth(value) > MAX_DEPTH or not _numbers_finite(value):
        return NOT_STRICT
    return value


# --- client frame fields ---------------------------------------------------------


def _is_id(value) -> bool:
    return type(value) is int and value >= 0


# frame type → field → (accepts the value, required)
FIELD_RULES = {
    "ping": {},
    "subscribe": {
        "stream": (lambda v: isinstance(v, str), True),
        "since": (lambda v: v is None or _is_id(v), False),
        "presence": (lambda v: isinstance(v, bool), False),
    },
    "unsubscribe": {"stream": (lambda v: isinstance(v, str), True)},
    "publish": {
        "stream": (lambda v: isinstance(v, str), True),
        "data": (lambda v: True, True),
    },
    "auth": {"token": (lambda v: isinstance(v, str), True)},
    "presence": {"stream": (lambda v: isinstance(v, str), True)},
}


def wrong_field(frame: dict) -> bool:
    """A frame of a known type with a field missing or of the wrong type."""
    for name, (accepts, required) in FIELD_RULES.get(frame["type"], {}).items():
        if name not in frame:
            if required:
                return True
        elif not accepts(frame[name]):
            return True
    return False


# --- Authorization: Bearer ---------------------------------------------------------


def bearer_accepted(header: str, token: str) -> bool:
    """Scheme in any ASCII case, spaces/tabs between, around: nothing else."""
    pattern = r"[ \t]*bearer[ \t]+" + re.escape(token) + r"[ \t]*"
    return re.fullmatch(pattern, header, re.IGNORECASE | re.ASCII) is not None
