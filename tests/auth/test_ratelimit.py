"""Sign-in throttling per client address, on a clock the test holds (``now`` is passed in)."""

from __future__ import annotations

import pytest

from surveillance.auth import ratelimit
from surveillance.auth.ratelimit import SignInLimiter

WINDOW_S = 300.0
ADDRESS = "203.0.113.7"


def limiter() -> SignInLimiter:
    return SignInLimiter(max_failures=3, window_s=WINDOW_S)


def attempt(limiter: SignInLimiter, client: str, now: float) -> float:
    """One wrong password as the sign-in route handles it: counted before the check."""
    return limiter.attempt(client, now)


def test_failures_below_the_limit_never_make_anyone_wait() -> None:
    limits = limiter()
    for now in (0.0, 10.0):
        assert limits.attempt(ADDRESS, now) == 0.0
        assert limits.retry_after(ADDRESS, now) == 0.0


def test_at_the_limit_the_wait_lasts_until_the_oldest_failure_leaves_the_window() -> None:
    limits = limiter()
    for now in (0.0, 10.0, 20.0):
        limits.attempt(ADDRESS, now)
    assert limits.retry_after(ADDRESS, 20.0) == WINDOW_S - 20.0
    assert limits.retry_after(ADDRESS, 100.0) == WINDOW_S - 100.0
    assert limits.retry_after(ADDRESS, WINDOW_S) == 0.0  # the first failure has left


def test_the_window_slides_rather_than_resets() -> None:
    # Failures spread out never add up; a burst inside one window does.
    limits = limiter()
    for now in (0.0, 200.0, 400.0, 600.0):
        limits.attempt(ADDRESS, now)
        assert limits.retry_after(ADDRESS, now) == 0.0
    limits.attempt(ADDRESS, 650.0)  # 400, 600, 650 are within 300 s of each other
    assert limits.retry_after(ADDRESS, 650.0) == pytest.approx(400.0 + WINDOW_S - 650.0)


def test_one_address_being_throttled_does_not_lock_out_another() -> None:
    limits = limiter()
    for now in (0.0, 1.0, 2.0):
        limits.attempt(ADDRESS, now)
    assert limits.retry_after(ADDRESS, 3.0) > 0
    assert limits.retry_after("198.51.100.1", 3.0) == 0.0


def test_a_successful_sign_in_takes_back_its_own_attempt_only() -> None:
    # Forgetting every failure on success would let whoever knows one valid password reset
    # the count between guesses.
    limits = limiter()
    limits.attempt(ADDRESS, 0.0)  # wrong
    limits.attempt(ADDRESS, 1.0)  # wrong
    limits.attempt(ADDRESS, 2.0)  # right:
    limits.succeeded(ADDRESS)
    assert limits.retry_after(ADDRESS, 2.0) == 0.0
    assert limits.attempt(ADDRESS, 3.0) == 0.0  # wrong: the third counted attempt
    assert limits.retry_after(ADDRESS, 3.0) > 0


def test_attempts_are_counted_before_the_check_so_parallel_ones_get_the_limit() -> None:
    # Every attempt is in flight at once: none has failed yet, all were counted.
    limits = limiter()
    waits = [limits.attempt(ADDRESS, 0.0) for _ in range(10)]
    assert waits.count(0.0) == 3


def test_guessing_on_while_throttled_does_not_extend_the_wait() -> None:
    # The route refuses a throttled attempt before checking the password: no new failure.
    limits = limiter()
    for now in (0.0, 1.0, 2.0):
        attempt(limits, ADDRESS, now)
    waits = [attempt(limits, ADDRESS, now) for now in (50.0, 100.0, 299.0)]
    assert waits == [250.0, 200.0, 1.0]
    assert attempt(limits, ADDRESS, 300.0) == 0.0


def test_failures_from_a_spray_of_addresses_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ratelimit, "MAX_TRACKED_CLIENTS", 3)
    limits = limiter()
    for i in range(10):
        limits.attempt(f"10.0.0.{i}", float(i))
    # The oldest addresses were forgotten to make room: the newest are still throttled.
    for _ in range(2):
        limits.attempt("10.0.0.9", 10.0)
    assert limits.retry_after("10.0.0.9", 10.0) > 0
    limits.attempt("10.0.0.0", 11.0)
    assert limits.retry_after("10.0.0.0", 11.0) == 0.0


def test_a_spray_of_addresses_through_the_sign_in_route_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ratelimit, "MAX_TRACKED_CLIENTS", 3)
    limits = limiter()
    for i in range(10):
        attempt(limits, f"10.0.0.{i}", float(i))
    assert limits.tracked_clients <= 3
