"""Close a socket when its access token expires (docs/protocol.md §4.2–4.3).

One pair of event-loop timers per socket (TimerHandles, far lighter than a
sleeping task per socket), rescheduled by an `auth` frame and cancelled on
disconnect; no polling loop.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable

from django.conf import settings

MAX_WARNING = 30.0


class ExpiryTimer:
    __slots__ = ("_warn", "_expire", "_handles", "_tasks")

    def __init__(
        self,
        on_warning: Callable[[int], Awaitable[None]],
        on_expiry: Callable[[], Awaitable[None]],
    ):
        self._warn, self._expire = on_warning, on_expiry
        self._handles: list[asyncio.TimerHandle] = []
        self._tasks: set[asyncio.Task] = set()

    def schedule(self, expires_at: int, lifetime: int | None = None) -> None:
        """(Re)arm: `auth.expiring` min(30 s, TTL/3) before exp, close at exp + leeway.

        TTL is the token's own lifetime (`exp - iat`) when known: a ticket
        carries only `exp`, and then the configured lifetime is assumed.
        """
        self.cancel()
        loop = asyncio.get_running_loop()
        now = time.time()
        ttl = settings.AUTHSOCKET_ACCESS_TTL if lifetime is None else lifetime
        warning_lead = min(MAX_WARNING, max(0, ttl) / 3)
        warn_in = expires_at - warning_lead - now
        close_in = expires_at + settings.AUTHSOCKET_LEEWAY - now
        if warn_in > 0:
            self._handles.append(
                loop.call_later(warn_in, self._spawn, self._warn, expires_at)
            )
        else:
            self._spawn(self._warn, expires_at)
        self._handles.append(
            loop.call_later(max(0.0, close_in), self._spawn, self._expire)
        )

    def cancel(self) -> None:
        for handle in self._handles:
            handle.cancel()
        self._handles.clear()

    def _spawn(self, callback, *args) -> None:
        task = asyncio.ensure_future(callback(*args))
        self._tasks.add(task)  # keep a reference until it finishes
        task.add_done_callback(self._tasks.discard)
