"""What a wall screen needs to show a tour in step with every other screen."""

from __future__ import annotations

from pydantic import Field

from surveillance.api.schemas.base import Out, UtcTime
from surveillance.wall.layouts import Grid


class TourPageOut(Out):
    grid: Grid
    dwell_s: float = Field(description="The page's own dwell, else its tour's")


class TourScheduleOut(Out):
    name: str
    title: str
    epoch: UtcTime = Field(
        description="When the tour's cycle started (it was saved): the page shown at a "
        "moment is where that moment falls in the cycle of the pages' dwells after it"
    )
    server_time: UtcTime = Field(
        description="The server's clock when it answered, for screens whose clock is off"
    )
    pages: list[TourPageOut]
