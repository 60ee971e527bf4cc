"""Moments and windows of recorded footage: each bad input refused in words that name it."""

from __future__ import annotations

from datetime import datetime

import pytest

from surveillance.errors import InvalidRequest
from surveillance.services.footage_times import epoch, iso, not_future, parse_moment, window

NOW = 1_764_600_000.0  # 2025-12-01T14:40:00Z


def test_moments_need_iso_8601_with_a_zone() -> None:
    assert parse_moment("at", "2025-12-01T14:40:00Z") == NOW
    assert parse_moment("at", "2025-12-01T15:40:00+01:00") == NOW
    assert iso(NOW + 0.25) == "2025-12-01T14:40:00.250Z"
    # Moments outside datetime's years 1..9999 in UTC: a refusal still writes them in
    # ISO 8601 (its expanded years), like every other moment it names.
    assert iso(parse_moment("at", "0001-01-01T00:00:00+23:59")) == "+0000-12-31T00:01:00.000Z"
    latest = parse_moment("from", "9999-12-31T23:59:59-14:00")
    assert iso(latest) == "+10000-01-01T13:59:59.000Z"
    assert iso(1e12) == "+33658-09-27T01:46:40.000Z" and iso(-1e12).startswith("-29719-")
    with pytest.raises(InvalidRequest) as ahead:
        not_future("from", latest, NOW)
    assert str(ahead.value) == (
        "`from` lies in the future (+10000-01-01T13:59:59.000Z; now is 2025-12-01T14:40:00.000Z)"
    )
    for text, words in (
        ("2025-12-01T14:40:00", "`at` needs a time zone"),
        ("2025-12-01", "`at` needs a time zone"),
        ("yesterday", "`at` is not an ISO 8601 moment"),
        ("9" * 100, "`at` is not an ISO 8601 moment"),
    ):
        with pytest.raises(InvalidRequest, match=words):
            parse_moment("at", text)
    with pytest.raises(InvalidRequest, match="`start` needs a time zone"):
        epoch("start", datetime(2025, 12, 1, 14, 40))  # a naive moment: refused


@pytest.mark.parametrize(
    ("start", "end", "allowed_ahead", "words"),
    [
        (NOW + 60, NOW + 70, False, "`start` lies in the future"),
        (NOW - 10, NOW + 60, False, "`end` lies in the future"),
        (NOW - 10, NOW - 20, False, "`end` must lie after `start`"),
        (NOW - 10, NOW - 10, False, "`end` must lie after `start`"),
        (NOW - 100, NOW - 30, False, "is 70 s; at most 60 s is allowed"),
        (NOW - 10, NOW + 40, True, None),  # a clip waiting for its post-event seconds
        (NOW - 60, NOW, False, None),
    ],
)
def test_windows(start: float, end: float, allowed_ahead: bool, words: str | None) -> None:
    if words is None:
        checked = window(start, end, now=NOW, max_s=60, future_end_allowed=allowed_ahead)
        assert (checked.start, checked.end) == (start, end)
    else:
        with pytest.raises(InvalidRequest, match=words):
            window(start, end, now=NOW, max_s=60, future_end_allowed=allowed_ahead)
