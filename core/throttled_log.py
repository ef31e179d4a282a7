"""One log line per window for a failure that meets many sockets at once.

In an outage every socket whose work needs the failing service fails alike:
thousands of sockets, thousands of the same line, and the one line an
operator needs scrolls away. The first failure is logged; those of the next
`every` seconds are only counted (metrics have them all), and the next line
says how many it stands for.
"""

import logging
import time
from collections.abc import Callable


class ThrottledLog:
    """WARNING lines to `logger`, at most one every `every` seconds."""

    def __init__(
        self,
        logger: logging.Logger,
        every: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.every = every
        self.clock = clock
        self.quiet_until = float("-inf")
        self.unlogged = 0

    def warning(self, message: str, *args) -> None:
        now = self.clock()
        if now < self.quiet_until:
            self.unlogged += 1
            return
        self.quiet_until = now + self.every
        if self.unlogged:
            message += f" (and {self.unlogged} more since the last such line)"
            self.unlogged = 0
        self.logger.warning(message, *args)
