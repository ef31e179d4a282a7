"""Per-socket frame rate limit: a token bucket (docs/protocol.md §1 `AUTHSOCKET_FRAME_RATE`)."""

import time
from collections.abc import Callable

from core.env import parse_rate

# Float slack: a frame exactly on time, or strikes forgiven exactly in full,
# must not come out a hair short (0.2 s apart on a monotonic clock at 8137 s,
# times 5/s, is 0.99999999999909).
_SLACK = 1e-9


class FrameLimiter:
    """`N/s` sustained with a burst of 2N; persistent flooding is reported.

    `take()` answers whether a frame may be processed. Each refusal is a
    strike; an accepted frame takes one away, and N more are forgiven each
    second, so the pause a client makes after `rate_limited` counts before
    its next frame is let through. Forgiven only by accepted frames, the
    strikes of a window of frames sent before the first refusal came back
    outlived the pause and closed the socket at the next window (the browser
    client at 8 to 12 frames a second). `flooding` turns true once more than
    N strikes are outstanding: a client over the rate gets errors, one that
    keeps sending at over three times the rate is closed. `clock` is
    `time.monotonic` except in tests.
    """

    __slots__ = (
        "_capacity",
        "_fill",
        "_tokens",
        "_stamp",
        "_strikes",
        "_patience",
        "_clock",
    )

    def __init__(self, rate: str, clock: Callable[[], float] = time.monotonic):
        count, period = parse_rate(rate)
        self._capacity = 2.0 * count
        self._fill = count / period
        self._tokens = self._capacity
        self._clock = clock
        self._stamp = clock()
        self._strikes = 0.0
        self._patience = count

    def take(self) -> bool:
        now = self._clock()
        refilled = (now - self._stamp) * self._fill
        self._stamp = now
        self._tokens = min(self._capacity, self._tokens + refilled)
        self._strikes = max(0.0, self._strikes - refilled)
        if self._tokens >= 1.0 - _SLACK:
            self._tokens = max(0.0, self._tokens - 1.0)
            self._strikes = max(0.0, self._strikes - 1.0)
            return True
        self._strikes += 1.0
        return False

    @property
    def flooding(self) -> bool:
        return self._strikes > self._patience + _SLACK
