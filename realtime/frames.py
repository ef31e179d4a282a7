"""Client frame text → a dict, server frame dict → text (docs/protocol.md §4.2).

Strict both ways: a client frame is strict JSON, an object with a string
`type`, and text daphne can encode back; a server frame never holds NaN or
Infinity. Anything else is a `FrameError`, answered `bad_request`.
"""

import json
import re

from django.conf import settings

from core import strict_json
from realtime.protocol import ErrorCode


class FrameError(Exception):
    """A frame the client got wrong: answered with an error, the socket stays.

    `request` is the refused frame when `frame_parse` got as far as a JSON
    object that can be echoed, so that the error carries its `ref`.
    """

    def __init__(self, code: ErrorCode, detail: str, request: dict | None = None):
        super().__init__(detail)
        self.code, self.detail, self.request = code, detail, request


# allow_nan=False: a server frame is strict JSON or is not sent at all. One
# encoder for every frame: `json.dumps` with options builds a new one per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dumps(frame: dict) -> str:
    return _ENCODER.encode(frame)


def frame_too_big(text: str) -> bool:
    """Over `AUTHSOCKET_MAX_MESSAGE_BYTES` in UTF-8 (encoded only when it could be)."""
    limit = settings.AUTHSOCKET_MAX_MESSAGE_BYTES
    if len(text) * 4 <= limit:
        return False
    return len(text.encode("utf-8", "surrogatepass")) > limit


# A JSON escape of a UTF-16 surrogate; alone it decodes to text UTF-8 cannot carry.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_NOT_A_FRAME = 'A frame is a JSON object with a "type".'


def frame_parse(text: str) -> dict:
    """The frame as a dict with a string `type`, or `FrameError(bad_request)`.

    An object refused only for its `type` is the error's `request`, so that
    the error echoes its `ref` (§4.2); one that is not valid Unicode is not.
    """
    try:
        frame = strict_json.loads(text)
    except strict_json.StrictJSONError as exc:
        raise FrameError(
            ErrorCode.BAD_REQUEST, f"Frames must be strict JSON: {exc}"
        ) from None
    if not isinstance(frame, dict):
        raise FrameError(ErrorCode.BAD_REQUEST, _NOT_A_FRAME)
    if _SURROGATE_ESCAPE.search(text):
        # Echoed back (`ref`) or stored, a lone surrogate would make daphne's
        # UTF-8 encoding of our reply fail; refuse it here instead.
        try:
            dumps(frame).encode("utf-8")
        except UnicodeEncodeError:
            raise FrameError(
                ErrorCode.BAD_REQUEST, "Frames must be valid Unicode text."
            ) from None
    if not isinstance(frame.get("type"), str):
        raise FrameError(ErrorCode.BAD_REQUEST, _NOT_A_FRAME, frame)
    return frame


def frame_echo(text: str) -> dict | None:
    """What an answer to a frame that was never handled echoes (its `ref`), or None.

    For a frame refused before parsing (the rate limit): parsed only then, so
    it costs no more than the frame would have, and only for frames answered.
    """
    try:
        return frame_parse(text)
    except FrameError as exc:
        return exc.request
