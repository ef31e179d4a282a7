"""The application may close a WebSocket 1011 under daphne too (§4.3).

1011 is RFC 6455's "the server met an unexpected condition", the code
docs/protocol.md gives a socket whose frame the server could not serve (a
database outage). autobahn lets an application send only 1000 and
3000–4999: daphne hands it the ASGI close code, and 1011 raised inside the
consumer's `send`. daphne closed 1011 only for an application that raised,
and logged that exception with its traceback: one per socket, thousands in
an outage. A consumer that handled the error closes 1011 itself
(realtime/base_consumer.py), so this connection sends that close frame the
way autobahn sends its own 1011.

Applied by authsocket/asgi.py to daphne's protocol class, under plain
``daphne`` as under ``python -m authsocket.serve``.
"""

from core.daphne_fixes import daphne_class_to_fix, fixed
from realtime.protocol import CloseCode  # plain enums, no Django

# A plain int: autobahn refuses an IntEnum member as a close code.
INTERNAL_ERROR = int(CloseCode.INTERNAL_ERROR)


def allow_internal_error_close() -> None:
    """Fix daphne's WebSocket protocol (core/daphne_fixes.py)."""
    protocol = daphne_class_to_fix(
        "daphne.ws_protocol", "WebSocketProtocol", "serverClose"
    )
    if protocol is None:
        return
    close = protocol.serverClose

    @fixed
    def serverClose(self, code=None):
        if code != INTERNAL_ERROR:
            close(self, code)
            return
        # autobahn's own way to send a code it refuses from applications;
        # ignored once the connection is closing or closed.
        self.sendCloseFrame(code=INTERNAL_ERROR, isReply=False)

    protocol.serverClose = serverClose
