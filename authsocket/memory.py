"""Give memory back after many sockets closed (docs/capacity.md).

A closed socket leaves reference cycles behind (daphne's request and
protocol objects, Twisted's deferreds, the consumer and its helpers). Only
the garbage collector frees them, and the tuning of authsocket/gc_tuning.py
makes its full collections rare: after a wave of closes the process would
keep their memory until one happens. So every `AUTHSOCKET_RECLAIM_AFTER_CLOSES`
closes, or as many closes as sockets are still open if that is more (the
pause of a full collection grows with what is alive: this keeps its cost
per close flat), one full collection runs, then glibc's `malloc_trim(0)`
hands the C heap's free pages back to the system. Whatever CPython's own
allocator keeps for small objects (arenas with one live object left) stays
until reused. `0` turns this off.
"""

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import time

from django.conf import settings

logger = logging.getLogger(__name__)


def heap_trim() -> bool:
    """Hand the C heap's free pages back to the system; False where there is no glibc."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False


def _malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # musl, macOS: no malloc_trim
        return None


class Reclaimer:
    """Counts closes; after enough of them, one collection and a trim, off the closing path."""

    def __init__(self) -> None:
        self.closed = 0  # since the last reclaim
        self._pending = False

    def socket_closed(self, *, still_open: int) -> None:
        every = settings.AUTHSOCKET_RECLAIM_AFTER_CLOSES
        if not every:
            return
        self.closed += 1
        if self._pending or self.closed < max(every, still_open):
            return
        self._pending = True
        # Not inside the closing socket's handler: once the loop gets to it.
        asyncio.get_running_loop().call_soon(self.reclaim)

    def reclaim(self) -> None:
        """One full collection, then the trim; logged, it is a pause."""
        self._pending, closed, self.closed = False, self.closed, 0
        started = time.perf_counter()
        freed = gc.collect()
        trimmed = heap_trim()
        logger.info(
            "memory reclaimed after %d closes: %d objects freed, heap %s, %.0f ms",
            closed,
            freed,
            "trimmed" if trimmed else "not trimmed",
            (time.perf_counter() - started) * 1000,
        )


reclaimer = Reclaimer()
