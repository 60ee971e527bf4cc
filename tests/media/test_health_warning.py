"""A retrying stream's health: its warning outlives plainer failures, retry news is told."""

from __future__ import annotations

import time

from surveillance.media.health import (
    WARNING_CLEARS_AFTER_ONLINE_S,
    ErrorKind,
    StreamHealth,
    StreamState,
)

EXPOSED = "FFmpeg was redirected to 127.0.0.3:554 ...; it may have sent the credentials there"


def test_a_possible_credential_leak_stays_the_warning_through_later_failures() -> None:
    health = StreamHealth()
    health.set_error(ErrorKind.REDIRECT, EXPOSED, StreamState.OFFLINE, credentials_exposed=True)
    health.set_error(ErrorKind.REDIRECT, "redirected ...; refused", StreamState.OFFLINE)
    health.set_error(ErrorKind.AUTH, "authentication failed (401)", StreamState.OFFLINE)
    health.set_error(ErrorKind.REFUSED, "connection refused", StreamState.OFFLINE)
    assert health.last_error == "connection refused"
    assert health.warning == EXPOSED and health.warning_kind is ErrorKind.REDIRECT


def test_among_equal_failures_the_newest_is_the_warning() -> None:
    health = StreamHealth()
    health.set_error(ErrorKind.REFUSED, "connection refused", StreamState.OFFLINE)
    health.set_error(ErrorKind.TIMEOUT, "no answer within 5 s", StreamState.OFFLINE)
    assert health.warning == "no answer within 5 s"
    health.set_error(ErrorKind.AUTH, "authentication failed (401)", StreamState.OFFLINE)
    health.set_error(ErrorKind.TIMEOUT, "no answer within 5 s", StreamState.OFFLINE)
    assert health.warning_kind is ErrorKind.AUTH


def test_the_warning_clears_only_after_a_steady_minute_online() -> None:
    health = StreamHealth()
    health.set_error(ErrorKind.AUTH, "authentication failed (401)", StreamState.OFFLINE)
    health.set_state(StreamState.ONLINE)
    now = time.time()
    health.clear_warning_if_steady(now + WARNING_CLEARS_AFTER_ONLINE_S - 1)
    assert health.warning_kind is ErrorKind.AUTH
    health.clear_warning_if_steady(now + WARNING_CLEARS_AFTER_ONLINE_S + 1)
    assert health.warning is None and health.warning_kind is None
    # A later plain failure starts a new warning at any rank.
    health.set_error(ErrorKind.REFUSED, "connection refused", StreamState.OFFLINE)
    assert health.warning == "connection refused"


def test_retrying_in_the_same_state_keeps_its_since_and_tells_the_listener() -> None:
    changes: list[StreamState] = []
    health = StreamHealth(on_change=lambda: changes.append(health.state))
    health.set_error(ErrorKind.REFUSED, "connection refused", StreamState.OFFLINE)
    since = health.state_since
    count = len(changes)
    health.set_retry(time.time() + 2, attempting=False)
    health.set_retry(None, attempting=True)
    health.set_error(ErrorKind.TIMEOUT, "no answer within 5 s", StreamState.OFFLINE)
    assert health.state_since == since
    assert len(changes) == count + 3  # each is news for the page, none moved "since"
    health.set_retry(None, attempting=True)  # no change: no news
    assert len(changes) == count + 3
    snapshot = health.snapshot(0, 0.0, 0, 0)
    assert snapshot.attempting and snapshot.retry_at is None


def test_a_warning_whose_cause_is_gone_is_cleared_by_kind() -> None:
    health = StreamHealth(StreamState.IDLE)
    reason = "the platform has not registered since the node started"
    health.set_error(ErrorKind.UNREACHABLE, reason, StreamState.OFFLINE)
    health.clear_warning(ErrorKind.TIMEOUT)  # another kind: kept
    assert health.warning == reason
    health.clear_warning(ErrorKind.UNREACHABLE)
    assert (health.warning, health.warning_kind, health.warning_at) == (None, None, None)
