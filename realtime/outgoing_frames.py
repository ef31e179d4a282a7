"""A frame sent to a WebSocket that has just closed is dropped, not raised.

The client may leave (a close frame, a reset connection) while the
application is sending to it: a live message of a busy stream, a `welcome`.
Twisted has closed the connection, and daphne has queued the application's
``websocket.disconnect``, but the application sends first: autobahn raises
``Disconnected``, the consumer ends with it, and daphne logs "Exception
inside application" with a traceback, at ERROR, for a client that merely
left. Nothing can reach that client any more, and the disconnect that
follows releases the socket's state as on any close, so the frame is
dropped. Applied to daphne's protocol class in the process that runs it,
under plain ``daphne`` as under ``python -m authsocket.serve``.
"""

import logging

from authsocket.daphne_fixes import daphne_class_to_fix, fixed

logger = logging.getLogger(__name__)


def drop_sends_after_close() -> None:
    """Fix daphne's WebSocket protocol (authsocket/daphne_fixes.py)."""
    protocol = daphne_class_to_fix(
        "daphne.ws_protocol", "WebSocketProtocol", "serverSend"
    )
    if protocol is None:
        return
    send = protocol.serverSend

    @fixed
    def serverSend(self, content, binary=False):
        if self.state in (self.STATE_CLOSING, self.STATE_CLOSED):
            logger.debug("frame to a closed WebSocket dropped")
            return
        send(self, content, binary)

    protocol.serverSend = serverSend
