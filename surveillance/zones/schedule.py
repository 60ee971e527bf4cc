"""When a zone is armed: daily time windows, months of the year, a date range.

All in the node's local time (the process's ``TZ``), as people write them on a duty
roster: "19:00 to 07:00, November to April". A window may cross midnight; it then belongs
to the day it starts, so the night that begins on the last day of the dry season is
watched until the morning after. An empty list of windows means all day, an empty list of
months all year; a date range (``MM-DD`` to ``MM-DD``, both days included) may cross the
new year. Pure: the caller passes the local time.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_WINDOWS = 8
# next_change looks this far ahead; a schedule that changes nothing within a year and a
# day (always armed, or a date range that never occurs) answers None.
LOOKAHEAD_DAYS = 367

_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_MONTH_DAY = re.compile(r"^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")
_LEAP_YEAR = 2000  # any leap year: checks that a MM-DD exists (02-29 does)


def _clock(text: str) -> time:
    match = _CLOCK.match(text)
    if match is None:
        raise ValueError("a time of day is HH:MM, 00:00 to 23:59")
    return time(int(match[1]), int(match[2]))


def _month_day(text: str) -> tuple[int, int]:
    match = _MONTH_DAY.match(text)
    if match is None:
        raise ValueError("a day of the year is MM-DD")
    month, day = int(match[1]), int(match[2])
    try:
        date(_LEAP_YEAR, month, day)
    except ValueError:
        raise ValueError("no such day of the year") from None
    return month, day


class Window(BaseModel):
    """Armed from ``from`` to ``to`` (excluded) each day; crossing midnight if to < from."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    start: str = Field(alias="from", description="HH:MM, local time")
    end: str = Field(alias="to", description="HH:MM, local time, excluded")

    @field_validator("start", "end")
    @classmethod
    def _is_clock(cls, value: str) -> str:
        _clock(value)
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Window:
        if self.start == self.end:
            raise ValueError("from and to are the same time: leave windows empty for all day")
        return self

    @property
    def crosses_midnight(self) -> bool:
        return _clock(self.end) < _clock(self.start)


class DateRange(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    start: str = Field(alias="from", description="MM-DD, included")
    end: str = Field(alias="to", description="MM-DD, included; before from crosses new year")

    @field_validator("start", "end")
    @classmethod
    def _is_month_day(cls, value: str) -> str:
        _month_day(value)
        return value

    def contains(self, day: date) -> bool:
        today = (day.month, day.day)
        first, last = _month_day(self.start), _month_day(self.end)
        if first <= last:
            return first <= today <= last
        return today >= first or today <= last  # crosses the new year


Month = Annotated[int, Field(ge=1, le=12)]


class Schedule(BaseModel):
    """A zone's schedule as stored (JSON) and sent by the API."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    windows: list[Window] = Field(default_factory=list, max_length=MAX_WINDOWS)
    months: list[Month] = Field(default_factory=list, max_length=12)
    dates: DateRange | None = None

    def _day_armed(self, day: date) -> bool:
        if self.months and day.month not in self.months:
            return False
        return self.dates is None or self.dates.contains(day)

    def armed_at(self, when: datetime) -> bool:
        """Whether the zone is armed at local time ``when`` (naive, the node's time zone)."""
        if not self.windows:
            return self._day_armed(when.date())
        now = when.time()
        for window in self.windows:
            start, end = _clock(window.start), _clock(window.end)
            if not window.crosses_midnight:
                started_on = when.date() if start <= now < end else None
            elif now >= start:
                started_on = when.date()
            else:  # the morning part of a night window: it started the day before
                started_on = when.date() - timedelta(days=1) if now < end else None
            if started_on is not None and self._day_armed(started_on):
                return True
        return False

    def next_change(self, when: datetime) -> datetime | None:
        """The first local time after ``when`` at which :meth:`armed_at` changes, or None
        if it does not change within a year."""
        armed = self.armed_at(when)
        # Arming can change only at midnight or at a window's edge: try those in order.
        edges = sorted({time(0, 0)} | {_clock(w.start) for w in self.windows}
                       | {_clock(w.end) for w in self.windows})  # fmt: skip
        for offset in range(LOOKAHEAD_DAYS + 1):
            day = when.date() + timedelta(days=offset)
            for edge in edges:
                candidate = datetime.combine(day, edge)
                if candidate > when and self.armed_at(candidate) != armed:
                    return candidate
        return None
