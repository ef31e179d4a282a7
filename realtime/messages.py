"""The `message` frame of docs/protocol.md §4.2, built once for live, replay, REST."""

import json
import re

from django.conf import settings

from core import strict_json
from realtime.models import Message
from realtime.protocol import MAX_DATA_DEPTH, ServerFrame
from realtime.streams import stream_label


class InvalidData(ValueError):
    """Message data that could not be stored or sent as JSON."""


# A NUL as JSON writes it, `\u0000`: after an even number of backslashes, so
# that text which only spells it (a backslash, then `u0000`) is not one.
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def message_frame(
    message: Message, *, replay: bool = False, full_name: bool = False
) -> dict:
    """The wire form; `message.sender` should be preloaded.

    `full_name` names a user stream `user:<id>` (the server API's answers)
    instead of the recipient's own `user`.
    """
    frame = {
        "type": ServerFrame.MESSAGE.value,
        "stream": message.stream if full_name else stream_label(message.stream),
        "id": message.seq,
        "sender": (
            {"id": message.sender_id, "username": message.sender.get_username()}
            if message.sender_id
            else None
        ),
        "data": message.data,
        "ts_ms": int(message.created_at.timestamp() * 1000),
    }
    if replay:
        frame["replay"] = True
    return frame


def frame_text(frame: dict) -> str:
    # allow_nan=False: a server frame is strict JSON or is not sent at all.
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def data_check(data) -> None:
    """Refuse data no frame may carry or storage cannot hold.

    Strict JSON (finite numbers, at most `MAX_DATA_DEPTH` deep, so a frame
    around it stays within the parser's depth) on every interface; PostgreSQL's
    jsonb rejects `\\u0000`, and UTF-8 cannot encode a lone surrogate; each
    would otherwise be a 500 or a dead socket.
    """
    try:
        strict_json.check(data, max_depth=MAX_DATA_DEPTH)
    except strict_json.StrictJSONError as exc:
        raise InvalidData(f"Data must be strict JSON: {exc}") from exc
    try:
        text = json.dumps(data, ensure_ascii=False, allow_nan=False)
        size = len(text.encode("utf-8"))
    except (ValueError, TypeError, RecursionError) as exc:
        raise InvalidData("Data must be finite JSON in valid Unicode.") from exc
    if "\\u0000" in text and _NUL_ESCAPE.search(text):
        raise InvalidData("Data must not contain NUL characters.")
    if size > settings.AUTHSOCKET_MAX_MESSAGE_BYTES:
        raise InvalidData(
            f"Data is larger than {settings.AUTHSOCKET_MAX_MESSAGE_BYTES} bytes."
        )
