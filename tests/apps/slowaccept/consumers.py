"""A consumer whose `socket_allowed()` answers only when the test says so.

It stands for an application slow to accept a handshake (a slow database, a
busy process): the handshake waits in `socket_allowed()` until
`GET /slow-accept/release` (asgi.py), so a test can let daphne give up on it
first, then let the application accept.
"""

import asyncio

from realtime.base_consumer import AuthenticatedConsumer

WAIT = 30.0  # bounded: a test that never releases does not leave it hanging


class Gates:
    """The events of the one handshake a test holds, in daphne's event loop."""

    def __init__(self) -> None:
        self.release = asyncio.Event()  # the test lets socket_allowed() answer
        self.accepted = asyncio.Event()  # the consumer has accepted and welcomed


_gates: list[Gates] = []


def gates() -> Gates:
    if not _gates:
        _gates.append(Gates())  # made on the loop that awaits them
    return _gates[0]


class SlowConsumer(AuthenticatedConsumer):
    async def socket_allowed(self) -> bool:
        await asyncio.wait_for(gates().release.wait(), WAIT)
        return True

    async def socket_authenticated(self) -> None:
        gates().accepted.set()
