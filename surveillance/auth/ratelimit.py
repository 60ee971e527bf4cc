"""Sign-in throttling: a client address may make a number of password attempts within a
window; past that it must wait until the oldest attempt leaves the window.

An attempt is counted *before* its password is checked, in one step with the decision to let
it through: checking first and counting the failure afterwards let parallel wrong sign-ins
all pass the check before any was counted (22-30 argon2 checks per window instead of 5).
A sign-in that succeeds takes back its own attempt, and only its own: forgetting all of the
address's failures would let someone who knows one valid password reset the count at will.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Protocol

MAX_TRACKED_CLIENTS = 10_000  # bounds memory under a spray of source addresses


class AttemptLimiter(Protocol):
    """What the sign-in and password routes need: this node's :class:`SignInLimiter`, or in
    cluster mode the one all nodes share (auth/shared_ratelimit.py)."""

    def attempt(self, client: str) -> float: ...

    def succeeded(self, client: str) -> None: ...


class SignInLimiter:
    def __init__(self, max_failures: int = 5, window_s: float = 300.0) -> None:
        self._max = max_failures
        self._window = window_s
        self._attempts: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def attempt(self, client: str, now: float | None = None) -> float:
        """Counts an attempt and returns 0 when this client may check a password now;
        otherwise counts nothing and returns the seconds it must wait."""
        now = time.monotonic() if now is None else now
        with self._lock:
            attempts = self._attempts.get(client)
            if attempts is None:
                if len(self._attempts) >= MAX_TRACKED_CLIENTS:
                    self._attempts.pop(next(iter(self._attempts)))  # the oldest-tracked
                attempts = self._attempts[client] = deque()
            self._prune(attempts, now)
            if len(attempts) >= self._max:
                # Refused attempts are not counted: guessing on does not extend the wait.
                return max(0.0, attempts[0] + self._window - now)
            attempts.append(now)
            return 0.0

    def retry_after(self, client: str, now: float | None = None) -> float:
        """Seconds this client must wait before its next attempt; 0 when it may try now."""
        now = time.monotonic() if now is None else now
        with self._lock:
            attempts = self._attempts.get(client)
            if attempts is None:
                return 0.0
            self._prune(attempts, now)
            if len(attempts) < self._max:
                return 0.0
            return max(0.0, attempts[0] + self._window - now)

    def succeeded(self, client: str) -> None:
        """The password was right: the attempt just counted does not count."""
        with self._lock:
            attempts = self._attempts.get(client)
            if attempts:
                attempts.pop()
            if not attempts:
                self._attempts.pop(client, None)

    @property
    def tracked_clients(self) -> int:
        with self._lock:
            return len(self._attempts)

    def _prune(self, attempts: deque[float], now: float) -> None:
        while attempts and attempts[0] <= now - self._window:
            attempts.popleft()
