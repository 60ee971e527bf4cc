"""Tours: how long each page stays up."""

from __future__ import annotations

from surveillance.wall.layouts import Grid
from surveillance.wall.tours import Tour, TourPage, page_dwells

EMPTY = Grid(cols=1, rows=1, tiles=[])


def test_a_page_keeps_its_own_dwell_and_the_others_take_the_tours() -> None:
    pages = [
        TourPage(grid=EMPTY, dwell_s=4),
        TourPage(grid=EMPTY),
        TourPage(grid=EMPTY, dwell_s=60),
    ]
    tour = Tour(name="rounds", title="Rounds", dwell_s=9, pages=pages)
    assert page_dwells(tour, 3) == [4, 9, 60]


def test_a_tag_tours_pages_all_take_the_tours_dwell() -> None:
    tour = Tour(name="fire", title="Fire", dwell_s=7, tag="forest-fire", preset="1")
    assert page_dwells(tour, 3) == [7, 7, 7]
    assert page_dwells(tour, 0) == []
