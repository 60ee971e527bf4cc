"""Per-address limits of the SIP transport: how many messages an address may send, and how
often its misbehaviour is logged. Both are bounded tables: addresses beyond the bound push
out the least recently seen, so a flood from many (spoofed) addresses costs no more memory.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable

MAX_ADDRESSES = 16384  # addresses remembered by each table
LOG_EVERY_S = 60.0  # one log line per address and kind of trouble a minute


class FloodLimiter:
    """A token bucket per address: ``rate_per_s`` messages a second, bursts of twice that."""

    def __init__(self, rate_per_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive")
        self._rate = rate_per_s
        self._burst = 2.0 * rate_per_s
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, when

    def allow(self, address: str) -> bool:
        now = self._clock()
        tokens, then = self._buckets.pop(address, (self._burst, now))
        tokens = min(self._burst, tokens + (now - then) * self._rate)
        allowed = tokens >= 1.0
        self._buckets[address] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > MAX_ADDRESSES:
            self._buckets.popitem(last=False)  # forgotten: it starts again with a full bucket
        return allowed

    def reserve(self, address: str) -> float:
        """Takes a token now, owing it if there is none; the seconds to wait until it would
        have been there (0 when it was). For senders that wait rather than lose messages."""
        now = self._clock()
        tokens, then = self._buckets.pop(address, (self._burst, now))
        tokens = min(self._burst, tokens + (now - then) * self._rate)
        self._buckets[address] = (tokens - 1.0, now)
        if len(self._buckets) > MAX_ADDRESSES:
            self._buckets.popitem(last=False)
        return max(0.0, (1.0 - tokens) / self._rate)


class LogLimiter:
    """Logs a warning about an address at most once per ``every_s`` for each kind of trouble,
    saying how many were not logged in between."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        every_s: float = LOG_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._every_s = every_s
        self._clock = clock
        self._last: OrderedDict[tuple[str, str], tuple[float, int]] = OrderedDict()

    def warning(self, address: str, kind: str, detail: str) -> None:
        now = self._clock()
        key = (address, kind)
        last, suppressed = self._last.pop(key, (float("-inf"), 0))
        if now - last < self._every_s:
            self._last[key] = (last, suppressed + 1)
            return
        self._last[key] = (now, 0)
        if len(self._last) > MAX_ADDRESSES:
            self._last.popitem(last=False)
        more = f" ({suppressed} more not logged)" if suppressed else ""
        self._logger.warning("SIP from %s: %s: %s%s", address, kind, detail, more)
