"""daphne's HTTP requests, without things a client could turn into errors.

Patched in the process that runs daphne, plain or through authsocket.serve
(a WebSocket handshake starts as one of these requests, so they apply to it,
and so does the last one, to the WebSocket it becomes):

* a client's ``Daphne-Root-Path`` header is dropped before daphne reads it.
  daphne takes the ASGI ``root_path`` from it, a header meant for a proxy
  that mounts the application under a prefix; authsocket is served at ``/``
  and its nginx configuration passes a client's headers on, so the client
  chose the prefix: Django routed the path without it, the WebSocket router
  raised for every path outside it (500, "Exception inside application"),
  and a value that was not ASCII made daphne itself answer 500. daphne's own
  ``--root-path`` still applies;
* Twisted does not parse POST bodies. It parsed urlencoded and multipart
  ones into ``request.args``, which daphne never reads (the application gets
  the raw body), and answered a multipart body it could not parse with an
  empty 400 of its own, where the API answers JSON (docs/protocol.md §2).
  ``authsocket.serve`` had this already (``RawBodyRequest``); plain daphne
  now has it too;
* a request line or a header line over Twisted's 16 KiB is answered 414 or
  431, with the API's JSON error; Twisted closed the connection without a
  word, and the client saw only that the server went away;
* a WebSocket text message that is not UTF-8 closes the socket with a 1007
  close frame (RFC 6455 §8.1, docs/protocol.md §4.3). autobahn finds it
  before the application sees the message, and under plain daphne dropped
  the TCP connection instead (its default ``failByDrop``): the client saw
  1006, which tells it to reconnect. ``authsocket.serve`` turns failByDrop
  off for every connection already; this changes only that one failure, so
  plain daphne still drops a connection for a broken frame.
"""

import json
import sys

from core.daphne_fixes import daphne_class_to_fix, fixed

ROOT_PATH_HEADER = b"daphne-root-path"
_TOO_LONG = {
    True: b"414 URI Too Long",  # the request line
    False: b"431 Request Header Fields Too Large",
}
_TOO_LONG_BODY = json.dumps(
    {"detail": "Request line or header too long.", "code": "bad_request"}
).encode()


def daphne_request_fixes() -> None:
    """Fix daphne's HTTP request and WebSocket protocol (core/daphne_fixes.py)."""
    close_invalid_text_1007()
    request = daphne_class_to_fix("daphne.http_protocol", "WebRequest", "process")
    if request is None:
        return
    init, process = request.__init__, request.process
    sys.modules[
        request.__module__
    ].http.HTTPChannel.lineLengthExceeded = _answer_line_too_long

    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self._parsePOSTFormSubmission = False

    @fixed
    def without_root_path_header(self):
        self.requestHeaders.removeHeader(ROOT_PATH_HEADER)
        return process(self)

    request.__init__ = __init__
    request.process = without_root_path_header


def close_invalid_text_1007() -> None:
    """autobahn's failure of a text message that is not UTF-8: a close frame."""
    protocol = daphne_class_to_fix(
        "daphne.ws_protocol", "WebSocketProtocol", "_invalid_payload"
    )
    if protocol is None:
        return
    invalid_payload = protocol._invalid_payload

    @fixed
    def _invalid_payload(self, reason):
        # Imported here: this module is loaded before Django is set up.
        from core import metrics

        if self.state == self.STATE_OPEN:  # else no close frame goes out
            metrics.close_code_sent(self.CLOSE_STATUS_CODE_INVALID_PAYLOAD)
        # autobahn then sends 1007 and drops the message (failedByMe): the
        # application never sees it, and daphne never decodes it.
        self.failByDrop = False
        return invalid_payload(self, reason)

    protocol._invalid_payload = _invalid_payload


def _answer_line_too_long(channel, line) -> None:
    """Twisted's `HTTPChannel.lineLengthExceeded`: an answer, then the close."""
    channel.clearLineBuffer()  # the rest of the line comes in again: once
    if channel.transport.disconnecting:
        return
    request_line = bool(getattr(channel, "_HTTPChannel__first_line", True))
    channel.transport.write(
        b"HTTP/1.1 " + _TOO_LONG[request_line] + b"\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: %d\r\n"
        b"Connection: close\r\n\r\n" % len(_TOO_LONG_BODY) + _TOO_LONG_BODY
    )
    channel.loseConnection()
