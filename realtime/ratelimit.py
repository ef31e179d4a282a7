"""Per-socket frame rate limit: a token bucket (docs/protocol.md §1 `AUTHSOCKET_FRAME_RATE`)."""

import time

from core.env import parse_rate


class FrameLimiter:
    """`N/s` sustained with a burst of 2N; persistent flooding is reported.

    `take()` answers whether a frame may be processed. `flooding` turns true
    once refusals outnumber the allowed rate without passing frames in between,
    so a client slightly over the limit gets errors, a flood gets closed.
    """

    __slots__ = ("_capacity", "_fill", "_tokens", "_stamp", "_strikes", "_patience")

    def __init__(self, rate: str):
        count, period = parse_rate(rate)
        self._capacity = 2.0 * count
        self._fill = count / period
        self._tokens = self._capacity
        self._stamp = time.monotonic()
        self._strikes = 0
        self._patience = count

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(
            self._capacity, self._tokens + (now - self._stamp) * self._fill
        )
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            self._strikes = max(0, self._strikes - 1)
            return True
        self._strikes += 1
        return False

    @property
    def flooding(self) -> bool:
        return self._strikes > self._patience
