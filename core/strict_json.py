"""Strict JSON, the one parser of every body and frame (docs/protocol.md).

Strict means: at most `MAX_DEPTH` deep (a scalar is 0 deep, an array or an
object 1 + its deepest member), no `NaN`/`Infinity`/`-Infinity`, and every
number a finite double. That includes integers: one beyond the double range
(about 1.8e308) is what `1e400` is, `Infinity` to a browser's `JSON.parse`, so
it is refused too; integers inside the range are kept exact.
"""

import json
import math
import re

MAX_DEPTH = 64

# A JSON string (skipped whole) or a bracket; only brackets change the depth.
# The closing quote is optional: an unterminated string runs to the end of the
# text (nothing after it can nest, the parser refuses it there) and is one
# match. Requiring the quote made each `"` of `"\"\"\"…` rescan to the end:
# quadratic, 70 s of CPU for one 64 KB frame. Possessive: nothing backtracks.
_DEPTH_TOKEN = re.compile(r'"(?:[^"\\]++|\\.)*+"?|[\[\]{}]', re.DOTALL)
# Integers this long may overflow a double; shorter ones never do.
_SAFE_INT_DIGITS = 300


class StrictJSONError(ValueError):
    """Not strict JSON; the message says why and is safe to show a client."""


def loads(text: str | bytes) -> object:
    """Parse strict JSON or raise `StrictJSONError` (never RecursionError)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise StrictJSONError("JSON must be UTF-8.") from None
    _check_text_depth(text)
    try:
        return json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            parse_int=_finite_int,
        )
    except StrictJSONError:
        raise
    except (ValueError, RecursionError) as exc:
        raise StrictJSONError(f"Not valid JSON: {_reason(exc)}") from None


def check(value: object, *, max_depth: int = MAX_DEPTH) -> None:
    """Refuse a Python value that strict JSON could not carry (depth, numbers)."""
    pending = [(value, 0)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise StrictJSONError("Numbers must be finite.")
        if isinstance(item, int) and not isinstance(item, bool):
            _check_int(item)
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list | tuple):
            continue
        if level + 1 > max_depth:
            raise StrictJSONError(f"JSON is nested deeper than {max_depth}.")
        pending.extend((member, level + 1) for member in item)


def _check_text_depth(text: str) -> None:
    """Count brackets outside strings BEFORE parsing: the C parser recurses."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return  # the common case, decided at C speed
    level = 0
    for token in _DEPTH_TOKEN.finditer(text):
        first = token.group()[0]
        if first in "[{":
            level += 1
            if level > MAX_DEPTH:
                raise StrictJSONError(f"JSON is nested deeper than {MAX_DEPTH}.")
        elif first in "]}":
            level -= 1


def _refuse_constant(name: str):
    raise StrictJSONError(f"{name} is not JSON.")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise StrictJSONError("Numbers must be finite doubles.")
    return value


def _finite_int(literal: str) -> int:
    try:
        value = int(literal)
    except ValueError:  # over Python's digit limit: far beyond any double
        raise StrictJSONError("Numbers must be finite doubles.") from None
    if len(literal) > _SAFE_INT_DIGITS:
        _check_int(value)
    return value


def _check_int(value: int) -> None:
    """An integer is fine when it rounds to a finite double (kept exact)."""
    try:
        float(value)
    except OverflowError:
        raise StrictJSONError("Numbers must be finite doubles.") from None


def _reason(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return f"nested deeper than {MAX_DEPTH}."
    return getattr(exc, "msg", None) or type(exc).__name__
