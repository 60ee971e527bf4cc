"""Sign-in throttling: after a number of failures from one client address within a window,
that address must wait until the oldest failure leaves the window."""

from __future__ import annotations

import threading
import time
from collections import deque

MAX_TRACKED_CLIENTS = 10_000  # bounds memory under a spray of source addresses


class SignInLimiter:
    def __init__(self, max_failures: int = 5, window_s: float = 300.0) -> None:
        self._max = max_failures
        self._window = window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str, now: float | None = None) -> float:
        """Seconds this client must wait before trying again; 0 when it may try now."""
        now = time.monotonic() if now is None else now
        with self._lock:
            failures = self._prune(client, now)
            if len(failures) < self._max:
                return 0.0
            return max(0.0, failures[0] + self._window - now)

    def failed(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if client not in self._failures and len(self._failures) >= MAX_TRACKED_CLIENTS:
                self._failures.pop(next(iter(self._failures)))
            self._prune(client, now).append(now)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)

    def _prune(self, client: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(client, deque())
        while failures and failures[0] <= now - self._window:
            failures.popleft()
        return failures
