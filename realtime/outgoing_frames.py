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

**Together, the sockets of a process hold at most
``AUTHSOCKET_MAX_PROCESS_SEND_BUFFER_BYTES``.** The limit per socket bounds
one client; a thousand slow clients of a busy room could each hold it. So the
sockets with bytes waiting are kept in `Backlogs` with their last count
(a client that keeps up has none: eager writes hand its frames straight to
the kernel, and it costs nothing here). When a frame would take their sum
over the process's limit, each one is counted again (they drain between
frames), and while the sum is still over, the socket with the most bytes
waiting is dropped as above. That is mostly the client that stopped reading
longest ago: one that reads drains between frames. The default, four
sockets at their own limit, leaves room for replays to several clients at
once.

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
import weakref

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
        if waiting is not None and not backlogs().admit(self, waiting, len(content)):
            return
        send(self, content, binary)

    protocol.serverSend = serverSend


@functools.cache
def backlogs() -> "Backlogs":
    """The process's one `Backlogs`, made at the first frame (Django is set
    up by then)."""
    from django.conf import settings

    return Backlogs(
        per_socket=settings.AUTHSOCKET_MAX_SEND_BUFFER_BYTES,
        per_process=settings.AUTHSOCKET_MAX_PROCESS_SEND_BUFFER_BYTES,
    )


class Backlogs:
    """The sockets of one process with frames waiting, and the bytes of each.

    `admit` runs before every frame. For a socket with nothing waiting while
    no socket has anything waiting, it is a few comparisons. Entries are
    weak: a socket that closes is forgotten with it. The recorded sum may
    still count bytes that have drained since; it is trusted only after a
    recount, which happens when it says the process is over its limit.
    """

    def __init__(self, *, per_socket: int, per_process: int) -> None:
        self.per_socket, self.per_process = per_socket, per_process
        self.waiting: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.total = 0

    def admit(self, protocol, waiting: int, frame: int) -> bool:
        """True to send a frame of `frame` bytes behind the `waiting` ones;
        False when the socket was dropped instead."""
        if waiting + frame > self.per_socket:
            self._forget(protocol)
            drop_slow_socket(protocol, waiting, SOCKET_LIMIT, self.per_socket)
            return False
        if not waiting:  # sent at once (authsocket/eager_writes.py)
            if self.total:  # an int: cheaper to ask than the weak dict
                self._forget(protocol)
            return True
        self._record(protocol, waiting + frame)
        if self.total > self.per_process:
            self._recount(but=protocol)
            return protocol not in self._shed()
        return True

    def _record(self, protocol, waiting: int) -> None:
        self.total += waiting - self.waiting.get(protocol, 0)
        self.waiting[protocol] = waiting

    def _forget(self, protocol) -> None:
        self.total -= self.waiting.pop(protocol, 0)

    def _recount(self, *, but) -> None:
        """Count every socket's bytes again (`but`'s was just counted)."""
        for protocol in list(self.waiting):
            if protocol is but:
                continue
            waiting = unsent_bytes(protocol.transport)
            if waiting and protocol.state == protocol.STATE_OPEN:
                self.waiting[protocol] = waiting
            else:
                del self.waiting[protocol]
        self.total = sum(self.waiting.values())

    def _shed(self) -> list:
        """Drop the sockets with the most bytes waiting until the sum fits."""
        dropped = []
        # `self.waiting`: an entry may vanish with its socket meanwhile.
        while self.total > self.per_process and self.waiting:
            protocol, waiting = max(self.waiting.items(), key=lambda item: item[1])
            held = self.total
            self._forget(protocol)
            drop_slow_socket(
                protocol, waiting, PROCESS_LIMIT, self.per_process, held=held
            )
            dropped.append(protocol)
        if not self.waiting:
            self.total = 0
        return dropped


def unsent_bytes(transport) -> int | None:
    """Bytes written to `transport` that the client has not taken yet; None
    when no Twisted TCP buffer is found under it."""
    while transport is not None and not hasattr(transport, "_tempDataLen"):
        transport = getattr(transport, "transport", None)  # TLS wraps TCP
    if transport is None:
        return None
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen


SOCKET_LIMIT = "AUTHSOCKET_MAX_SEND_BUFFER_BYTES"
PROCESS_LIMIT = "AUTHSOCKET_MAX_PROCESS_SEND_BUFFER_BYTES"


def drop_slow_socket(
    protocol, waiting: int, setting: str, limit: int, *, held: int | None = None
) -> None:
    """Abort the connection: its buffer is dropped with it, and daphne sends
    the application its disconnect (1006). `held`: what all the process's
    sockets held, when that is why."""
    together = "" if held is None else f"; the most of {held} held by all its sockets "
    logger.warning(
        "WebSocket of %s dropped: %d bytes of frames unread%s(%s %d)",
        _client(protocol),
        waiting,
        together or " ",
        setting,
        limit,
    )
    metrics.slow_socket_dropped()
    protocol.dropConnection(abort=True)


def _client(protocol) -> str:
    address = getattr(protocol, "client_addr", None)
    return f"{address[0]}:{address[1]}" if address else "a client"
