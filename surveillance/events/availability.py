"""Availability: per platform and day, the share of monitored time its cameras were online.

The figure command rooms report upward every month. Pure: intervals in, figures out; the
service (:mod:`surveillance.services.availability`) reads them from the events.

- A camera is offline during its ``camera.offline`` events (from their start to their end,
  or to now while active), whether or not a storm folded them under a platform event.
- Time the node itself was not running is *not monitored*: nobody knows whether the
  cameras were up, so it counts neither as online nor as offline. Monitored time is the
  union of the node's ``node.running`` events.
- A platform's online rate is the mean over its cameras of each camera's online fraction
  of the monitored time; a day with nothing monitored has no rate (None).
- Days are calendar days in the node's local time zone (the ``TZ`` environment of the
  process), so a day of 23 or 25 hours where that zone has daylight saving changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class Interval:
    start: float  # unix seconds
    end: float

    @property
    def seconds(self) -> float:
        return max(0.0, self.end - self.start)


@dataclass(frozen=True)
class DayAvailability:
    platform_id: str
    day: date  # in the node's local time zone
    cameras: int
    online_rate: float | None  # 0..1; None when nothing was monitored that day
    monitored_hours: float
    offline_events: int  # camera.offline events that began that day


def day_span(day: date, tz: tzinfo | None = None) -> Interval:
    """From the day's midnight to the next one, in ``tz`` (None: the node's local zone,
    as the C library reads ``TZ``, daylight saving included)."""

    def midnight(d: date) -> float:
        moment = datetime.combine(d, time())
        return (moment.replace(tzinfo=tz) if tz else moment.astimezone()).timestamp()

    return Interval(midnight(day), midnight(day + timedelta(days=1)))


def merged(intervals: Iterable[Interval]) -> list[Interval]:
    """The union of intervals, sorted, without overlaps or empty ones."""
    out: list[Interval] = []
    for piece in sorted((i for i in intervals if i.end > i.start), key=lambda i: i.start):
        if out and piece.start <= out[-1].end:
            out[-1] = Interval(out[-1].start, max(out[-1].end, piece.end))
        else:
            out.append(piece)
    return out


def clipped(intervals: Sequence[Interval], within: Interval) -> list[Interval]:
    """The parts of sorted, disjoint intervals that lie inside ``within``."""
    return [
        Interval(max(i.start, within.start), min(i.end, within.end))
        for i in intervals
        if i.end > within.start and i.start < within.end
    ]


def overlap_s(a: Sequence[Interval], b: Sequence[Interval]) -> float:
    """Seconds that two sorted, disjoint interval lists share (a linear merge)."""
    total, i, j = 0.0, 0, 0
    while i < len(a) and j < len(b):
        total += max(0.0, min(a[i].end, b[j].end) - max(a[i].start, b[j].start))
        if a[i].end <= b[j].end:
            i += 1
        else:
            j += 1
    return total


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def daily_availability(
    first: date,
    last: date,
    platforms: Mapping[str, Sequence[str]],
    offline: Mapping[str, Sequence[Interval]],
    running: Sequence[Interval],
    tz: tzinfo | None = None,
) -> list[DayAvailability]:
    """One row per platform (in the order given) and day from ``first`` to ``last``.

    ``platforms`` maps each platform to its cameras; ``offline`` each camera to its
    offline intervals (missing: never offline); ``running`` the node's running intervals.
    """
    monitored_all = merged(running)
    offline_merged = {camera: merged(spans) for camera, spans in offline.items()}
    rows: list[DayAvailability] = []
    for platform_id, cameras in platforms.items():
        for day in days(first, last):
            span = day_span(day, tz)
            monitored = clipped(monitored_all, span)
            monitored_s = sum(i.seconds for i in monitored)
            rates = [
                1.0 - overlap_s(offline_merged.get(camera, []), monitored) / monitored_s
                for camera in cameras
                if monitored_s > 0
            ]
            began = sum(
                1
                for camera in cameras
                for spell in offline.get(camera, ())
                if span.start <= spell.start < span.end
            )
            rows.append(
                DayAvailability(
                    platform_id=platform_id,
                    day=day,
                    cameras=len(cameras),
                    online_rate=sum(rates) / len(rates) if rates else None,
                    monitored_hours=monitored_s / SECONDS_PER_HOUR,
                    offline_events=began,
                )
            )
    return rows
