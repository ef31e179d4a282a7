"""A connection's bytes are written at once when nothing waits before them.

Twisted does not write when it is asked to: it buffers the bytes, registers
the socket for writing, and writes on a later turn of the event loop, then
unregisters the socket. Under daphne's asyncio reactor that is two
``epoll_ctl`` calls, one more wake-up of the loop and one more callback for
every turn in which a socket is written to: in a profile of the presence
churn it was about half of what sending a small frame cost, the same for
every frame of every socket. asyncio's own transports (and so uvicorn's)
write at once instead, and buffer only what the kernel did not take; this
does the same for daphne's TCP connections: when their buffer is empty the
bytes go to the kernel now, and only a rest is left to Twisted's buffer, in
order. An error from the socket is left to Twisted's own writer, which meets
it again on its turn and closes the connection as it always has.

Applied, once, to Twisted's TCP connection class in the process that runs
daphne (plain ``daphne`` and ``python -m authsocket.serve``), and in any
process where daphne's app is installed (it loads Twisted to serve
``runserver``): writes there are the same bytes in the same order, sooner.
"""

from core.daphne_fixes import daphne_class_to_fix, fixed


def write_at_once() -> None:
    """Fix Twisted's TCP connections where daphne serves (core/daphne_fixes.py)."""
    connection = daphne_class_to_fix("twisted.internet.tcp", "Connection", "write")
    if connection is None:
        return
    connection.write = fixed(eager(connection.write))


def eager(buffered_write):
    """A connection's `write`: to the socket at once when nothing waits, what
    the kernel did not take (or everything else) to `buffered_write`, Twisted's."""

    def write(self, data: bytes) -> None:
        if data and _nothing_waits(self):
            try:
                sent = self.socket.send(data)
            except OSError:  # full (EAGAIN) or failing: Twisted's turn
                sent = 0
            if sent == len(data):
                return
            if sent:
                data = data[sent:]
        buffered_write(self, data)

    return write


def _nothing_waits(connection) -> bool:
    """Connected and not being aborted, plain TCP (TLS started on it encrypts
    first), and no byte in Twisted's buffer that the new ones would overtake."""
    return (
        connection.connected
        and not connection._aborting
        and not connection.TLS
        and not connection._writeDisconnected
        and not connection.dataBuffer
        and not connection._tempDataLen
    )
