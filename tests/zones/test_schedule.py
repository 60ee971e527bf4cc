"""Zone schedules: windows across midnight, months, a dry season across the new year."""

from __future__ import annotations

from datetime import datetime

import pytest
from pydantic import ValidationError

from surveillance.zones.schedule import Schedule


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_empty_schedule_is_always_armed_and_never_changes() -> None:
    schedule = Schedule()
    assert schedule.armed_at(at("2026-03-01T12:00"))
    assert schedule.next_change(at("2026-03-01T12:00")) is None


def test_a_night_window_crosses_midnight() -> None:
    night = Schedule.model_validate({"windows": [{"from": "19:00", "to": "07:00"}]})
    assert not night.armed_at(at("2026-06-10T18:59"))
    assert night.armed_at(at("2026-06-10T19:00"))
    assert night.armed_at(at("2026-06-11T00:30"))
    assert night.armed_at(at("2026-06-11T06:59"))
    assert not night.armed_at(at("2026-06-11T07:00"))
    assert night.next_change(at("2026-06-10T12:00")) == at("2026-06-10T19:00")
    assert night.next_change(at("2026-06-10T23:00")) == at("2026-06-11T07:00")


def test_a_night_belongs_to_the_day_it_starts() -> None:
    # Only in October: the night of Oct 31 is watched until the morning of Nov 1; the
    # night starting Sep 30 is not watched into Oct 1.
    october_nights = Schedule.model_validate(
        {"windows": [{"from": "22:00", "to": "06:00"}], "months": [10]}
    )
    assert october_nights.armed_at(at("2026-11-01T05:00"))
    assert not october_nights.armed_at(at("2026-11-01T22:30"))
    assert not october_nights.armed_at(at("2026-10-01T03:00"))
    assert october_nights.armed_at(at("2026-10-01T23:00"))
    assert october_nights.next_change(at("2026-09-15T12:00")) == at("2026-10-01T22:00")


def test_a_dry_season_crosses_the_new_year() -> None:
    dry = Schedule.model_validate({"dates": {"from": "11-15", "to": "03-31"}})
    assert dry.armed_at(at("2026-11-15T00:00"))
    assert dry.armed_at(at("2027-01-20T10:00"))
    assert dry.armed_at(at("2027-03-31T23:59"))
    assert not dry.armed_at(at("2027-04-01T00:00"))
    assert not dry.armed_at(at("2026-11-14T23:59"))
    assert dry.next_change(at("2027-02-01T10:00")) == at("2027-04-01T00:00")
    assert dry.next_change(at("2026-06-01T10:00")) == at("2026-11-15T00:00")


def test_windows_months_and_dates_combine() -> None:
    schedule = Schedule.model_validate(
        {
            "windows": [{"from": "08:00", "to": "09:00"}, {"from": "16:00", "to": "17:30"}],
            "months": [1, 2, 12],
            "dates": {"from": "12-20", "to": "02-10"},
        }
    )
    assert schedule.armed_at(at("2026-12-24T08:30"))
    assert schedule.armed_at(at("2027-02-10T17:00"))
    assert not schedule.armed_at(at("2027-02-11T08:30"))  # after the date range
    assert not schedule.armed_at(at("2026-12-10T08:30"))  # December, before the range
    assert not schedule.armed_at(at("2026-12-24T12:00"))  # between the windows
    assert schedule.next_change(at("2026-12-24T12:00")) == at("2026-12-24T16:00")


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"windows": [{"from": "25:00", "to": "07:00"}]}, "HH:MM"),
        ({"windows": [{"from": "7:00", "to": "08:00"}]}, "HH:MM"),
        ({"windows": [{"from": "07:00", "to": "07:00"}]}, "the same time"),
        ({"windows": [{"from": "07:00"}]}, "to"),
        ({"months": [0]}, "months"),
        ({"months": [13]}, "months"),
        ({"dates": {"from": "02-30", "to": "03-01"}}, "no such day"),
        ({"dates": {"from": "2026-01-01", "to": "03-01"}}, "MM-DD"),
        ({"weekdays": [1]}, "weekdays"),
    ],
)
def test_bad_schedules_are_refused_naming_the_field(body: dict[str, object], where: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Schedule.model_validate(body)
    assert where in str(refused.value)
