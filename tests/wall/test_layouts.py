"""Wall grids: tiles stay inside the grid and never overlap; presets fill their grid."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from surveillance.wall.layouts import MAX_GRID, PRESETS, STORED, Grid, Layout, Tile, fill


def cells(grid: Grid) -> list[tuple[int, int]]:
    return [
        (x, y)
        for tile in grid.tiles
        for x in range(tile.x, tile.x + tile.w)
        for y in range(tile.y, tile.y + tile.h)
    ]


def grid(cols: int, rows: int, *tiles: dict[str, Any]) -> Grid:
    """A grid as the API receives it: plain JSON-like data, validated."""
    return Grid.model_validate({"cols": cols, "rows": rows, "tiles": list(tiles)})


@pytest.mark.parametrize(
    ("name", "size", "tiles"),
    [
        ("1", 1, 1),
        ("2x2", 2, 4),
        ("3x3", 3, 9),
        ("4x4", 4, 16),
        ("5x5", 5, 25),
        ("6x6", 6, 36),
        ("1+5", 3, 6),
        ("1+7", 4, 8),
        ("1+12", 4, 13),
    ],
)
def test_each_preset_fills_its_grid_exactly_once(name: str, size: int, tiles: int) -> None:
    preset = PRESETS[name]
    assert (preset.cols, preset.rows, len(preset.tiles)) == (size, size, tiles)
    covered = cells(preset)
    assert len(covered) == len(set(covered)) == size * size


def test_the_big_tile_of_a_one_plus_preset_is_where_operators_expect_it() -> None:
    assert PRESETS["1+5"].tiles[0] == Tile(x=0, y=0, w=2, h=2)
    assert PRESETS["1+7"].tiles[0] == Tile(x=0, y=0, w=3, h=3)
    assert PRESETS["1+12"].tiles[0] == Tile(x=1, y=1, w=2, h=2)  # in the middle


def test_tiles_may_touch_and_leave_cells_empty() -> None:
    layout = grid(3, 2, {"x": 0, "y": 0, "w": 2, "h": 2}, {"x": 2, "y": 0})
    assert len(layout.tiles) == 2  # (2, 1) stays empty: allowed


@pytest.mark.parametrize(
    "tile",
    [
        {"x": 2, "y": 0, "w": 2},  # one cell too wide
        {"x": 0, "y": 1, "h": 2},  # one cell too tall
        {"x": 3, "y": 0},  # starts outside
    ],
)
def test_a_tile_reaching_outside_the_grid_is_refused(tile: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="tile 0 reaches outside the 3x2 grid"):
        grid(3, 2, tile)


def test_overlapping_tiles_are_refused_and_the_second_is_named() -> None:
    with pytest.raises(ValidationError, match="tile 1 overlaps another tile"):
        grid(3, 3, {"x": 0, "y": 0, "w": 2, "h": 2}, {"x": 1, "y": 1})
    with pytest.raises(ValidationError, match="tile 2 overlaps"):
        grid(2, 2, {"x": 0, "y": 0}, {"x": 1, "y": 0}, {"x": 0, "y": 0})


def test_grid_size_is_bounded() -> None:
    biggest = grid(MAX_GRID, MAX_GRID, {"x": MAX_GRID - 1, "y": MAX_GRID - 1})
    assert biggest.cols == MAX_GRID
    for cols, rows in ((MAX_GRID + 1, 1), (1, MAX_GRID + 1), (0, 1), (1, 0)):
        with pytest.raises(ValidationError):
            grid(cols, rows)
    for bad in ({"x": -1, "y": 0}, {"x": 0, "y": 0, "w": 0}, {"x": 0, "y": 0, "h": 0}):
        with pytest.raises(ValidationError):
            grid(2, 2, bad)


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="extra"):
        grid(1, 1, {"x": 0, "y": 0, "span": 2})
    with pytest.raises(ValidationError, match="extra"):
        Grid.model_validate({"cols": 1, "rows": 1, "tiles": [], "zoom": 2})


@pytest.mark.parametrize("name", ["lobby", "gate-1.main", "0", "a" * 64])
def test_layout_names_that_are_safe_in_a_url_are_accepted(name: str) -> None:
    assert Layout(name=name, title="Lobby", cols=1, rows=1, tiles=[]).name == name


@pytest.mark.parametrize("name", ["Lobby", "../etc", "-lead", "a b", "", "a" * 65, "caf\u00e9"])
def test_other_layout_names_are_refused(name: str) -> None:
    with pytest.raises(ValidationError):
        Layout(name=name, title="Lobby", cols=1, rows=1, tiles=[])


def test_a_layout_needs_a_title() -> None:
    with pytest.raises(ValidationError):
        Layout(name="lobby", title="", cols=1, rows=1, tiles=[])


def test_fill_shows_cameras_in_tile_order_and_leaves_the_rest_empty() -> None:
    filled = fill(PRESETS["1+5"], ["gate", "lobby", "yard"])
    assert [t.camera for t in filled.tiles] == ["gate", "lobby", "yard", None, None, None]
    assert filled.tiles[0].w == 2  # the big tile shows the first camera
    assert [t.camera for t in fill(PRESETS["2x2"], ["a", "b", "c", "d", "e"]).tiles] == [
        "a",
        "b",
        "c",
        "d",
    ]


def test_fill_leaves_the_shared_preset_untouched() -> None:
    fill(PRESETS["2x2"], ["gate", "lobby"])
    assert all(tile.camera is None for tile in PRESETS["2x2"].tiles)


def test_a_title_with_a_bidi_control_is_refused_but_one_stored_before_still_loads() -> None:
    body = {"name": "led", "title": "Gate \u202egnp.exe", "cols": 1, "rows": 1, "tiles": []}
    with pytest.raises(ValidationError, match=r"U\+202E \(RIGHT-TO-LEFT OVERRIDE\)"):
        Layout.model_validate(body)
    stored = Layout.model_validate_json(json.dumps(body), context={STORED: True})
    assert stored.title == body["title"]
    assert Layout.model_validate({**body, "title": "\u05e9\u05e2\u05e8\u200f"}).title  # no control


def test_the_alarm_tile_is_one_of_the_layouts_tiles_or_none_for_the_last() -> None:
    body = {"name": "led", "title": "LED", "cols": 2, "rows": 1}
    tiles = [{"x": 0, "y": 0}, {"x": 1, "y": 0}]
    assert Layout.model_validate({**body, "tiles": tiles}).alarm_tile is None  # as stored before
    assert Layout.model_validate({**body, "tiles": tiles, "alarm_tile": 1}).alarm_tile == 1
    with pytest.raises(ValidationError, match="alarm_tile 2 is not a tile of this layout"):
        Layout.model_validate({**body, "tiles": tiles, "alarm_tile": 2})
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        Layout.model_validate({**body, "tiles": tiles, "alarm_tile": -1})
