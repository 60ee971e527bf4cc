"""Availability figures from hand-made intervals: online rate over monitored time, node
down not counted, offline spells across midnight split between days, days in the node's
local time zone (the process's TZ, set here), and the CSV that carries them."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest

from surveillance.api.csv_export import csv_text
from surveillance.events.availability import Interval, daily_availability, day_span, merged

H = 3600.0


@pytest.fixture
def node_tz(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Days follow the process's TZ; tzset makes the C library read it again."""
    yield
    monkeypatch.undo()
    time.tzset()


def set_tz(monkeypatch: pytest.MonkeyPatch, zone: str) -> None:
    monkeypatch.setenv("TZ", zone)
    time.tzset()


def utc(day: int, hour: float = 0.0) -> float:
    return datetime(2026, 3, day, tzinfo=UTC).timestamp() + hour * H


def test_online_rate_over_monitored_time_in_utc_days(
    node_tz: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_tz(monkeypatch, "UTC")
    # The node ran all of day 1, was down 06:00-12:00 on day 2, and ran again to the end.
    running = [Interval(utc(1) - H, utc(2, 6)), Interval(utc(2, 12), utc(4))]
    offline = {
        # a: offline 22:00 on day 1 to 02:00 on day 2, across midnight
        "a": [Interval(utc(1, 22), utc(2, 2))],
        # b: offline 05:00-13:00 on day 2, mostly while the node itself was down
        "b": [Interval(utc(2, 5), utc(2, 13))],
    }
    rows = daily_availability(
        date(2026, 3, 1), date(2026, 3, 3), {"town": ["a", "b", "c"]}, offline, running
    )
    assert [(r.platform_id, r.day.day) for r in rows] == [("town", 1), ("town", 2), ("town", 3)]
    day1, day2, day3 = rows
    assert day1.cameras == 3 and day1.monitored_hours == pytest.approx(24.0)
    assert day1.online_rate == pytest.approx((22 / 24 + 1 + 1) / 3)
    assert day1.offline_events == 1  # a's spell began on day 1 and counts there only
    # Day 2: 18 monitored hours; a lost 2 of them, b lost 1 (05-06) + 1 (12-13) = 2.
    assert day2.monitored_hours == pytest.approx(18.0)
    assert day2.online_rate == pytest.approx((16 / 18 + 16 / 18 + 1) / 3)
    assert day2.offline_events == 1
    assert day3.online_rate == pytest.approx(1.0) and day3.offline_events == 0


def test_a_day_the_node_never_ran_has_no_rate(
    node_tz: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_tz(monkeypatch, "UTC")
    offline = {"a": [Interval(utc(5, 1), utc(5, 2))]}
    rows = daily_availability(
        date(2026, 3, 5), date(2026, 3, 5), {"town": ["a"], "empty": []}, offline, []
    )
    assert [(r.platform_id, r.online_rate, r.monitored_hours) for r in rows] == [
        ("town", None, 0.0), ("empty", None, 0.0),
    ]  # fmt: skip
    assert rows[0].offline_events == 1  # it happened, even if nobody could measure it


def test_days_are_the_node_local_days(node_tz: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # China Standard Time, UTC+8 all year (no daylight saving): a local day runs from
    # 16:00 UTC the day before.
    set_tz(monkeypatch, "Asia/Shanghai")
    span = day_span(date(2026, 3, 2))
    assert span == Interval(utc(1, 16), utc(2, 16))
    running = [Interval(utc(1), utc(4))]
    # Offline 15:00-17:00 UTC on March 1st: 23:00-01:00 local, across local midnight.
    offline = {"a": [Interval(utc(1, 15), utc(1, 17))]}
    first, second = daily_availability(
        date(2026, 3, 1), date(2026, 3, 2), {"p": ["a"]}, offline, running
    )
    # March 1st local began 16:00 UTC on Feb 28, before the node ran: 16 h monitored.
    assert first.monitored_hours == pytest.approx(16.0)
    assert first.online_rate == pytest.approx(15 / 16) and first.offline_events == 1
    assert second.monitored_hours == pytest.approx(24.0)
    assert second.online_rate == pytest.approx(23 / 24) and second.offline_events == 0


def test_a_daylight_saving_day_is_23_hours(node_tz: None, monkeypatch: pytest.MonkeyPatch) -> None:
    set_tz(monkeypatch, "Europe/Berlin")  # clocks go forward on 2026-03-29
    span = day_span(date(2026, 3, 29))
    assert span.seconds == pytest.approx(23 * H)


def test_overlapping_pieces_are_counted_once() -> None:
    pieces = [Interval(5, 9), Interval(0, 2), Interval(1, 3), Interval(7, 7), Interval(9, 10)]
    assert merged(pieces) == [Interval(0, 3), Interval(5, 10)]


def test_csv_has_a_header_and_no_formulas() -> None:
    text = csv_text(
        ("platform", "name", "rate", "hours"),
        [("=cmd", "+SUM(A1)", 0.5, None), ("-1", "@x", -2, 3.25), ('ok,"q"', "\tt", 1, 0)],
    )
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["platform", "name", "rate", "hours"]
    assert rows[1] == ["'=cmd", "'+SUM(A1)", "0.5", ""]
    assert rows[2] == ["'-1", "'@x", "-2", "3.25"]  # numbers stay numbers, text is guarded
    assert rows[3] == ['ok,"q"', "'\tt", "1", "0"]
    assert text.endswith("\r\n")
