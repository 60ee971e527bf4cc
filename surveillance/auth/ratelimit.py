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
            # Asking must not add the address: only failures are tracked, so the cap on
            # tracked addresses holds however many addresses merely try.
            failures = self._failures.get(client)
            if failures is None:
                return 0.0
            self._prune(failures, now)
            if not failures:
                del self._failures[client]
                return 0.0
            if len(failures) < self._max:
                return 0.0
            return max(0.0, failures[0] + self._window - now)

    def failed(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            failures = self._failures.get(client)
            if failures is None:
                if len(self._failures) >= MAX_TRACKED_CLIENTS:
                    self._failures.pop(next(iter(self._failures)))  # the oldest-tracked
                failures = self._failures[client] = deque()
            self._prune(failures, now)
            failures.append(now)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)

    @property
    def tracked_clients(self) -> int:
        with self._lock:
            return len(self._failures)

    def _prune(self, failures: deque[float], now: float) -> None:
        while failures and failures[0] <= now - self._window:
            failures.popleft()
