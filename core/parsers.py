"""DRF's request parser for every `/api/` body: strict JSON or 400 `parse_error`.

DRF's own JSONParser lets a deeply nested body overflow the C parser's stack
(a RecursionError: 500 and a logged traceback) and takes `1e400` as infinity.
It also decodes a body in whatever charset the request names: punycode's
decoder is quadratic, and a 1 MB body named so cost 18 s of CPU, before any
login. JSON is UTF-8 (RFC 8259 §8.1); any other charset is refused unread.
"""

import codecs

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, get_encoding

from core import strict_json


class StrictJSONParser(JSONParser):
    """`application/json` bodies through `core.strict_json`."""

    def parse(self, stream, media_type=None, parser_context=None):
        if not _is_utf8(get_encoding(parser_context or {})):
            raise ParseError("JSON parse error - bodies are UTF-8.")
        try:
            return strict_json.loads(stream.read().decode("utf-8"))
        except UnicodeError:
            raise ParseError("JSON parse error - not valid UTF-8.") from None
        except strict_json.StrictJSONError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None


def _is_utf8(charset: str) -> bool:
    """UTF-8 by any of its names, or ASCII (a subset of it)."""
    try:
        return codecs.lookup(charset).name in {"utf-8", "ascii"}
    except LookupError:
        return False
