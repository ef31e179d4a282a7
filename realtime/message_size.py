"""A message over daphne's size limit closes 4413 under plain daphne too (§4.3).

autobahn cuts a message over ``--websocket-max-message-size`` at its frame
header, before the application sees it. With plain daphne's options it then
drops the TCP connection (``failByDrop``): the client saw 1006, not the 4413
of docs/protocol.md, and the close-code metric missed it. This connection
now sends a 4413 close frame instead, counted. ``python -m authsocket.serve``
does the same in ``ContractWebSocketProtocol``, with its limit at twice
``AUTHSOCKET_MAX_MESSAGE_BYTES``.
"""

from core.daphne_fixes import daphne_class_to_fix, fixed
from realtime.protocol import CloseCode  # plain enums, no Django

# A plain int: autobahn refuses an IntEnum member as a close code.
MESSAGE_TOO_BIG = int(CloseCode.MESSAGE_TOO_BIG)


def close_oversized_messages_4413() -> None:
    """Fix daphne's WebSocket protocol (core/daphne_fixes.py)."""
    protocol = daphne_class_to_fix(
        "daphne.ws_protocol", "WebSocketProtocol", "_max_message_size_exceeded"
    )
    if protocol is None:
        return

    @fixed
    def _max_message_size_exceeded(self, msg_size, max_msg_size, reason):
        # Imported here: daphne may load this module before Django is set up.
        from core import metrics

        if self.state == self.STATE_OPEN:  # else no close frame goes out
            metrics.close_code_sent(MESSAGE_TOO_BIG)
        self.failByDrop = False  # a close frame, not a dropped connection
        self._fail_connection(MESSAGE_TOO_BIG, reason)

    protocol._max_message_size_exceeded = _max_message_size_exceeded
