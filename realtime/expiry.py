"""Close a socket when its access token expires (docs/protocol.md §4.2–4.3).

One event-loop timer per socket at a time (a TimerHandle, far lighter than a
sleeping task per socket): the warning's, which arms the close's when it
fires. Rescheduled by an `auth` frame and cancelled on disconnect; no
polling loop. The warning goes out once per expiry: a renewal to the `exp`
already warned of (the same token again) only re-arms the close.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable

from django.conf import settings

MAX_WARNING = 30.0


class ExpiryTimer:
    __slots__ = ("_warn", "_expire", "_handle", "_tasks", "_warned")

    def __init__(
        self,
        on_warning: Callable[[int], Awaitable[None]],
        on_expiry: Callable[[], Awaitable[None]],
    ):
        self._warn, self._expire = on_warning, on_expiry
        self._handle: asyncio.TimerHandle | None = None
        # Callbacks still running; made by the first one (most sockets never fire).
        self._tasks: set[asyncio.Task] | None = None
        # The `exp`s warned of that are still to come: going back to an
        # earlier token (of an `exp` warned of) is not warned again.
        self._warned: set[int] = set()

    def schedule(self, expires_at: int, lifetime: int | None = None) -> None:
        """(Re)arm: `auth.expiring` min(30 s, TTL/3) before exp, close at exp + leeway.

        TTL is the token's own lifetime (`exp - iat`) when known: a ticket
        carries only `exp`, and then the configured lifetime is assumed.
        """
        self.cancel()
        now = time.time()
        ttl = settings.AUTHSOCKET_ACCESS_TTL if lifetime is None else lifetime
        warning_lead = min(MAX_WARNING, max(0, ttl) / 3)
        close_at = expires_at + settings.AUTHSOCKET_LEEWAY
        warn_in = expires_at - warning_lead - now
        if warn_in > 0:
            self._arm(warn_in, self._warning_due, expires_at, close_at)
        else:
            self._warning_due(expires_at, close_at)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _warning_due(self, expires_at: int, close_at: float) -> None:
        """Warn now; the close comes at `close_at` (wall clock), unless rescheduled.

        Not twice for one `exp`: a renewal with a token expiring then has
        been warned already; one to another `exp` is warned of that one.
        """
        if expires_at not in self._warned:
            # Past `exp`s go: no `auth` can bring back a token that expired.
            now = time.time()
            self._warned = {exp for exp in self._warned if exp >= now}
            self._warned.add(expires_at)
            self._spawn(self._warn, expires_at)
        self._arm(max(0.0, close_at - time.time()), self._spawn, self._expire)

    def _arm(self, delay: float, callback, *args) -> None:
        self._handle = asyncio.get_running_loop().call_later(delay, callback, *args)

    def _spawn(self, callback, *args) -> None:
        task = asyncio.ensure_future(callback(*args))
        if self._tasks is None:
            self._tasks = set()
        self._tasks.add(task)  # keep a reference until it finishes
        task.add_done_callback(self._tasks.discard)
