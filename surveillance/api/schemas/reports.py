"""Response models of the reports."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from surveillance.api.schemas.base import Out


class AvailabilityDayOut(Out):
    platform: str
    platform_name: str
    date: dt.date = Field(description="A day in the node's time zone")
    cameras: int = Field(description="Enabled cameras of the platform in your scope")
    online_rate: float | None = Field(
        description="Mean over its cameras of the share of monitored time online, 0..1; "
        "null when the node was not running at all that day"
    )
    monitored_hours: float = Field(description="Hours the node was running that day")
    offline_events: int = Field(description="camera.offline events that began that day")


class AvailabilityOut(Out):
    time_zone: str = Field(description="The node's time zone, in which days are counted")
    days: list[AvailabilityDayOut]
