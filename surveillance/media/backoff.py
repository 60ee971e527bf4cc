"""Reconnect delays: capped exponential growth with full jitter, reset after success.

Full jitter (a uniform draw between zero and the exponential ceiling) spreads the
reconnects of hundreds of cameras after a platform outage instead of having them all knock
at once; the floor keeps a tight loop from hammering a dead server.
"""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, initial_s: float, max_s: float, rng: random.Random | None = None) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self._rng = rng or random.Random()
        self._failures = 0

    def next_delay(self) -> float:
        ceiling = min(self.max_s, self.initial_s * (2 ** min(self._failures, 30)))
        self._failures += 1
        return max(self.initial_s / 2, self._rng.uniform(0, ceiling))

    def reset(self) -> None:
        self._failures = 0

    @property
    def failures(self) -> int:
        return self._failures
