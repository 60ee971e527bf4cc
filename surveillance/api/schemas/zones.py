"""Zone bodies: what the zone editor sends and what it reads back."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from surveillance.api.schemas.base import In, Out, UtcTime
from surveillance.config.models import Identifier
from surveillance.config.names import refuse_bidi_controls
from surveillance.zones.geometry import MAX_POINTS
from surveillance.zones.records import MAX_SENSITIVITY, MIN_SENSITIVITY
from surveillance.zones.schedule import Schedule
from surveillance.zones.tables import NAME_LENGTH

# The length bounds come before the name check (config/names.py DisplayName's): after a
# validator pydantic no longer knows the value is text and reports "items", not characters.
ZoneName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_LENGTH),
    AfterValidator(refuse_bidi_controls),
]


class ZoneIn(In):
    name: ZoneName
    tag: Identifier | None = Field(None, description="Groups zones, e.g. forest-fire")
    # The shape is checked by zones/geometry.py, whose refusals name the point or edges;
    # the bound here only keeps the body small (a longer list is refused there too).
    points: list[list[float]] = Field(
        max_length=MAX_POINTS + 1, description="[[x, y], ...], 0..1 of the picture's width "
        "and height from its top-left corner; 3 to 64 points, not crossing itself",
    )  # fmt: skip
    schedule: Schedule = Field(default_factory=Schedule)
    sensitivity: int = Field(50, ge=MIN_SENSITIVITY, le=MAX_SENSITIVITY)
    enabled: bool = True


class ZoneOut(Out):
    id: int
    camera_id: str
    name: str
    tag: str | None
    points: list[tuple[float, float]]
    schedule: Schedule
    sensitivity: int
    enabled: bool
    created_by: str
    created_at: UtcTime
    updated_at: UtcTime
    armed_now: bool = Field(description="Whether motion here raises an alarm now")
    next_change: UtcTime | None = Field(
        description="When armed_now next changes (schedules are in the node's local time); "
        "null if not within a year"
    )
