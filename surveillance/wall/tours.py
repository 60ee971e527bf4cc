"""Tours: pages shown one after another, each for its dwell time.

A tour is either a fixed list of pages (each a grid with its cameras), or a tag group: every
camera carrying a tag, paged through a preset grid, so a new forest-fire camera joins the
forest-fire tour without anyone editing it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from surveillance.wall.layouts import PRESETS, Grid, LayoutName, Title, fill


class TourPage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grid: Grid
    dwell_s: float | None = Field(None, ge=2, le=3600, description="Overrides the tour's dwell")


class Tour(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: LayoutName
    title: Title
    dwell_s: float = Field(15, ge=2, le=3600, description="Seconds each page stays up")
    pages: list[TourPage] = Field(default_factory=list, max_length=500)
    tag: str | None = Field(None, max_length=64, description="Page through this tag's cameras")
    preset: str = Field("3x3", description="Grid preset for tag tours")

    @model_validator(mode="after")
    def _pages_or_tag(self) -> Tour:
        if not self.pages and not self.tag:
            raise ValueError("a tour needs pages or a tag")
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; one of {', '.join(PRESETS)}")
        return self


def tag_pages(preset: str, cameras: list[str]) -> list[Grid]:
    """Every camera of a group, a grid-full at a time."""
    grid = PRESETS[preset]
    per_page = len(grid.tiles)
    return [fill(grid, cameras[i : i + per_page]) for i in range(0, len(cameras), per_page)]


def page_dwells(tour: Tour, page_count: int) -> list[float]:
    """Seconds each of the tour's ``page_count`` pages stays up: a fixed page's own dwell
    where it has one, else the tour's (a tag tour's pages all take the tour's)."""
    if tour.tag:
        return [tour.dwell_s] * page_count
    return [page.dwell_s or tour.dwell_s for page in tour.pages[:page_count]]
