"""The registry's goodbye when plain daphne stops (SIGTERM, SIGINT).

`authsocket.serve` drains its sockets and says goodbye itself. Plain daphne
stops its reactor at once: it cancels every application instance, whose
`disconnect` (realtime/channels_overrides.py) may not finish before the
loop stops, and without this the other processes would send those
users' leaves only after `AUTHSOCKET_PRESENCE_TTL`, as for a killed process
(docs/protocol.md §4.4). Twisted waits for the Deferred a "before shutdown"
trigger returns, with the event loop still running.
"""

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)

GOODBYE_WAIT = 5.0  # seconds: a stuck Redis must not keep the process alive

_installed = False


def goodbye_on_shutdown(goodbye: Callable[[], Awaitable[None]]) -> None:
    """Run `goodbye` before the reactor of a running daphne stops; installed once.

    Outside a running Twisted reactor (tests, management commands) it does
    nothing.
    """
    global _installed
    reactor = sys.modules.get("twisted.internet.reactor")
    if _installed or reactor is None or not getattr(reactor, "running", False):
        return
    _installed = True
    reactor.addSystemEventTrigger("before", "shutdown", _deferred, goodbye)


def _deferred(goodbye: Callable[[], Awaitable[None]]):
    from twisted.internet.defer import Deferred

    return Deferred.fromFuture(asyncio.ensure_future(_bounded(goodbye)))


async def _bounded(goodbye: Callable[[], Awaitable[None]]) -> None:
    try:
        async with asyncio.timeout(GOODBYE_WAIT):
            await goodbye()
    except TimeoutError:  # Redis not answering: nothing to trace
        logger.warning(
            "presence goodbye on shutdown did not finish within %.1fs; the other "
            "processes reap this one after AUTHSOCKET_PRESENCE_TTL",
            GOODBYE_WAIT,
        )
    except Exception:  # exiting anyway: the others reap us after the TTL
        logger.warning("presence goodbye on shutdown failed", exc_info=True)
