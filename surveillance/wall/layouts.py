"""Layouts: a grid of cells and tiles that may span cells, each showing one camera or none.

Presets are the layouts command rooms use every day; custom grids are any ``cols x rows``
with tiles spanning cells, validated so tiles stay inside the grid and never overlap.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from surveillance.config.names import refuse_bidi_controls

MAX_GRID = 12  # cells per side; a 4K wall at 12x12 is already 320x180 per tile
LAYOUT_NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
LayoutName = Annotated[str, Field(pattern=LAYOUT_NAME_PATTERN)]
# How /wall/{name} opens: "desk" with the operator's controls, "wall" with tiles and a status
# line only, for a screen nobody touches (an LED wall). The page's ?mode= overrides it.
LayoutDisplay = Literal["desk", "wall"]
# Validation context of a layout or tour read back from the store: saved before its title
# was checked as it is now, it still loads (the pages draw such characters harmlessly).
STORED = "stored"


def _new_title(value: str, info: ValidationInfo) -> str:
    if info.context and info.context.get(STORED):
        return value
    return refuse_bidi_controls(value)


# A title anyone with wall.edit gives and every wall screen shows.
Title = Annotated[str, Field(min_length=1, max_length=120), AfterValidator(_new_title)]


class Tile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    x: int = Field(ge=0, lt=MAX_GRID, description="Left cell, from 0")
    y: int = Field(ge=0, lt=MAX_GRID, description="Top cell, from 0")
    w: int = Field(1, ge=1, le=MAX_GRID, description="Cells spanned across")
    h: int = Field(1, ge=1, le=MAX_GRID, description="Cells spanned down")
    camera: str | None = Field(None, max_length=64, description="Camera id, or empty")


class Grid(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cols: int = Field(ge=1, le=MAX_GRID)
    rows: int = Field(ge=1, le=MAX_GRID)
    tiles: list[Tile]

    @model_validator(mode="after")
    def _tiles_fit_and_do_not_overlap(self) -> Grid:
        taken: set[tuple[int, int]] = set()
        for index, tile in enumerate(self.tiles):
            if tile.x + tile.w > self.cols or tile.y + tile.h > self.rows:
                raise ValueError(f"tile {index} reaches outside the {self.cols}x{self.rows} grid")
            cells = {(x, y) for x in range(tile.x, tile.x + tile.w)
                     for y in range(tile.y, tile.y + tile.h)}  # fmt: skip
            if cells & taken:
                raise ValueError(f"tile {index} overlaps another tile")
            taken |= cells
        return self


class Layout(Grid):
    name: LayoutName
    title: Title
    # A default, so layouts stored before the setting existed read as they used to open.
    display: LayoutDisplay = Field(
        "desk", description="desk: with the operator's controls; wall: tiles and status line only"
    )
    # Where a new alarm pins its camera on a wall showing this layout. A default, as display's.
    alarm_tile: int | None = Field(
        None, ge=0, description="Index of the tile alarms take; empty for the last tile"
    )

    @model_validator(mode="after")
    def _alarm_tile_is_a_tile(self) -> Layout:
        if self.alarm_tile is not None and self.alarm_tile >= len(self.tiles):
            raise ValueError(
                f"alarm_tile {self.alarm_tile} is not a tile of this layout "
                f"(it has {len(self.tiles)})"
            )
        return self


def _uniform(n: int) -> Grid:
    return Grid(cols=n, rows=n, tiles=[Tile(x=x, y=y) for y in range(n) for x in range(n)])


def _one_plus(cols: int, big: int) -> Grid:
    """A big tile of ``big x big`` cells top-left, small tiles filling the rest."""
    tiles = [Tile(x=0, y=0, w=big, h=big)]
    tiles += [Tile(x=x, y=y) for y in range(cols) for x in range(cols) if x >= big or y >= big]
    return Grid(cols=cols, rows=cols, tiles=tiles)


def _one_plus_twelve() -> Grid:
    """A 2x2 tile in the middle of a 4x4 grid, twelve around it."""
    tiles = [Tile(x=1, y=1, w=2, h=2)]
    tiles += [
        Tile(x=x, y=y) for y in range(4) for x in range(4) if not (1 <= x <= 2 and 1 <= y <= 2)
    ]
    return Grid(cols=4, rows=4, tiles=tiles)


PRESETS: dict[str, Grid] = {
    "1": _uniform(1),
    "2x2": _uniform(2),
    "3x3": _uniform(3),
    "4x4": _uniform(4),
    "5x5": _uniform(5),
    "6x6": _uniform(6),
    "1+5": _one_plus(3, 2),
    "1+7": _one_plus(4, 3),
    "1+12": _one_plus_twelve(),
}


def fill(grid: Grid, cameras: list[str]) -> Grid:
    """The grid with its tiles showing ``cameras`` in order (the rest empty)."""
    tiles = [
        tile.model_copy(update={"camera": cameras[i] if i < len(cameras) else None})
        for i, tile in enumerate(grid.tiles)
    ]
    return Grid(cols=grid.cols, rows=grid.rows, tiles=tiles)
