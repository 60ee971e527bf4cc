"""A zone as the rest of the node sees it: what an operator drew and when it is armed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from surveillance.zones.geometry import Point
from surveillance.zones.schedule import Schedule

MIN_SENSITIVITY = 1
MAX_SENSITIVITY = 100


@dataclass(frozen=True)
class ZoneSpec:
    """A zone as saved: already checked (``geometry.check_outline``, ``Schedule``)."""

    camera_id: str
    name: str
    points: tuple[Point, ...]
    schedule: Schedule
    sensitivity: int
    enabled: bool
    tag: str | None = None


@dataclass(frozen=True, kw_only=True)
class ZoneRecord(ZoneSpec):
    id: int
    created_by: str
    created_at: float  # unix seconds
    updated_at: float

    def armed_at(self, local: datetime) -> bool:
        """Whether motion here raises alarms at this local time."""
        return self.enabled and self.schedule.armed_at(local)
