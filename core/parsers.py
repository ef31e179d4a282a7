"""DRF's request parser for every `/api/` body: strict JSON or 400 `parse_error`.

DRF's own JSONParser lets a deeply nested body overflow the C parser's stack
(a RecursionError: 500 and a logged traceback) and takes `1e400` as infinity.
"""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, get_encoding

from core import strict_json


class StrictJSONParser(JSONParser):
    """`application/json` bodies through `core.strict_json`."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = get_encoding(parser_context or {})
        try:
            return strict_json.loads(stream.read().decode(encoding))
        except UnicodeError:  # punycode's decoder raises the bare base class
            raise ParseError(f"JSON parse error - not valid {encoding}.") from None
        except strict_json.StrictJSONError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
