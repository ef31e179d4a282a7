"""Capped exponential backoff with jitter, so a fleet does not reconnect in step."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass
class Backoff:
    """Delays base·2ⁿ capped at `cap`, drawn in [half, full] ("equal jitter")."""

    base: float = 0.5
    cap: float = 15.0
    attempt: int = 0

    def next_delay(self, at_least: float = 0.0) -> float:
        """The wait before the next try; counts the attempt."""
        ceiling = min(self.cap, self.base * 2 ** min(self.attempt, 30))
        self.attempt += 1
        return max(at_least, random.uniform(ceiling / 2, ceiling))

    def reset(self) -> None:
        self.attempt = 0
