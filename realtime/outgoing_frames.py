"""What daphne does with each frame the application sends: two guards.

**A frame to a WebSocket that has just closed is dropped, not raised.** The
client may leave (a close frame, a reset connection) while the application
is sending to it: a live message of a busy stream, a `welcome`. Twisted has
closed the connection, and daphne has queued the application's
``websocket.disconnect``, but the application sends first: autobahn raises
``Disconnected``, the consumer ends with it, and daphne logs "Exception
inside application" with a traceback, at ERROR, for a client that merely
left. Nothing can reach that client any more, and the disconnect that
follows releases the socket's state as on any close, so the frame is
dropped.

**A socket whose client does not take its frames is dropped.** daphne writes
every frame into Twisted's buffer for the connection and never looks back. A
client that stops reading (a frozen tab, a stalled network, a client that
subscribes to a busy room and reads nothing on purpose) made that buffer
grow with each message of its streams, without bound: 8.5 MB a second in a
busy room, until autobahn's ping timeout noticed about a minute later.
Before each frame, the bytes still waiting for the client are counted; when
the frame would take them over ``AUTHSOCKET_MAX_SEND_BUFFER_BYTES`` the
connection is aborted instead. The client sees 1006 and reconnects with
``since`` (docs/protocol.md §4.3), so a client that was merely slow loses no
stored message; the consumer gets its disconnect as on any close (presence,
the socket registry). The default holds one whole replay, the largest burst
the server sends by itself: a client that reads is never dropped for it.

Twisted offers no public count of a connection's unsent bytes (its one
public signal, a push producer, is already taken by twisted.web's channel
for the connection daphne upgraded), so `unsent_bytes` reads the buffer of
the TCP connection, below TLS when daphne serves TLS itself. Where it cannot
find one, the socket is never dropped for this.

Applied to daphne's protocol class in the process that runs it, under plain
``daphne`` as under ``python -m authsocket.serve``.
"""

import functools
import logging

from core import metrics
from core.daphne_fixes import daphne_class_to_fix, fixed

logger = logging.getLogger(__name__)


def guard_outgoing_frames() -> None:
    """Fix daphne's WebSocket protocol (core/daphne_fixes.py)."""
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
        waiting = unsent_bytes(self.transport)
        # len(content): the frame's characters, at most its bytes; close enough.
        if waiting is not None and waiting + len(content) > max_send_buffer_bytes():
            drop_slow_socket(self, waiting)
            return
        send(self, content, binary)

    protocol.serverSend = serverSend


@functools.cache
def max_send_buffer_bytes() -> int:
    """The setting, read when the first frame is sent (Django is set up by then)."""
    from django.conf import settings

    return settings.AUTHSOCKET_MAX_SEND_BUFFER_BYTES


def unsent_bytes(transport) -> int | None:
    """Bytes written to `transport` that the client has not taken yet; None
    when no Twisted TCP buffer is found under it."""
    while transport is not None and not hasattr(transport, "_tempDataLen"):
        transport = getattr(transport, "transport", None)  # TLS wraps TCP
    if transport is None:
        return None
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen


def drop_slow_socket(protocol, waiting: int) -> None:
    """Abort the connection: its buffer is dropped with it, and daphne sends
    the application its disconnect (1006)."""
    logger.warning(
        "WebSocket of %s dropped: %d bytes of frames unread "
        "(AUTHSOCKET_MAX_SEND_BUFFER_BYTES %d)",
        _client(protocol),
        waiting,
        max_send_buffer_bytes(),
    )
    metrics.slow_socket_dropped()
    protocol.dropConnection(abort=True)


def _client(protocol) -> str:
    address = getattr(protocol, "client_addr", None)
    return f"{address[0]}:{address[1]}" if address else "a client"
