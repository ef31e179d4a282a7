"""Give memory back after a wave of closes (docs/capacity.md).

A closed socket leaves reference cycles behind (daphne's request and
protocol objects, Twisted's deferreds, autobahn's handshake state). Only the
garbage collector frees them, and the tuning of authsocket/gc_tuning.py makes
its full collections rare: after a wave of closes the process would keep
their memory (and grow again on the next wave) until one happens.

So when the number of open sockets has fallen to half its peak or less, by
at least `AUTHSOCKET_RECLAIM_AFTER_DROP` sockets, one full collection runs,
then glibc's `malloc_trim(0)` hands the C heap's free pages back to the
system. A steady churn never halves the count, so it adds no collection to
the collector's own schedule; a wave costs a few, each a pause that grows
with the sockets still open (half the peak at most). What CPython's own
allocator keeps for small objects (an arena stays while one object in it
lives) stays, and is reused by the next sockets. `0` turns this off.
"""

import asyncio
import ctypes
import ctypes.util
import functools
import gc
import logging
import time

from django.conf import settings

logger = logging.getLogger(__name__)


def heap_trim() -> bool:
    """Hand the C heap's free pages back to the system; False where there is no glibc."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False


@functools.cache
def _malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # musl, macOS: no malloc_trim
        return None


class Reclaimer:
    """Watches the open count fall; after a wave, one collection and a trim."""

    def __init__(self) -> None:
        self.peak = 0  # most sockets open at once since the last reclaim
        self._pending = False

    def socket_closed(self, *, still_open: int) -> None:
        drop = settings.AUTHSOCKET_RECLAIM_AFTER_DROP
        if not drop:
            return
        self.peak = max(self.peak, still_open + 1)
        fallen = self.peak - still_open
        if self._pending or fallen < max(drop, self.peak // 2):
            return
        self._pending = True
        self.peak = still_open
        # Not inside the closing socket's handler: once the loop gets to it.
        asyncio.get_running_loop().call_soon(self.reclaim, fallen)

    def reclaim(self, fallen: int = 0) -> None:
        """One full collection, then the trim; logged, it is a pause."""
        self._pending = False
        started = time.perf_counter()
        freed = gc.collect()
        trimmed = heap_trim()
        logger.info(
            "memory reclaimed after %d sockets closed: %d objects freed, "
            "heap %s, %.0f ms",
            fallen,
            freed,
            "trimmed" if trimmed else "not trimmed",
            (time.perf_counter() - started) * 1000,
        )


reclaimer = Reclaimer()
