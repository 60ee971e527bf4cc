"""Wall layouts and tours on SQLite and on a real PostgreSQL: saved by name, replaced
whole, listed by name, deleted."""

from __future__ import annotations

import time

from sqlalchemy import Engine

from surveillance.wall.layouts import Grid, Layout, Tile
from surveillance.wall.store import WallStore
from surveillance.wall.tours import Tour, TourPage


def test_layouts_are_replaced_whole_and_listed_by_name(engine: Engine) -> None:
    store = WallStore(engine)
    one = Layout(name="lobby", title="Lobby", cols=1, rows=1, tiles=[Tile(x=0, y=0, camera="c1")])
    store.save_layout(one, "ann")
    assert store.layout("lobby") == one
    moved = one.model_copy(update={"title": "Lobby, moved"})
    store.save_layout(moved, "bob")  # the same name again replaces, it does not conflict
    store.save_layout(Layout(name="annex", title="Annex", cols=1, rows=1, tiles=[]), "ann")
    assert [layout.name for layout in store.layouts()] == ["annex", "lobby"]
    assert store.layout("lobby") == moved
    assert store.layout("nowhere") is None
    assert store.delete_layout("lobby") and not store.delete_layout("lobby")
    assert [layout.name for layout in store.layouts()] == ["annex"]


def test_tours_are_kept_apart_from_layouts(engine: Engine) -> None:
    store = WallStore(engine)
    page = TourPage(grid=Grid(cols=1, rows=1, tiles=[]))
    tour = Tour(name="lobby", title="Night round", pages=[page])
    store.save_tour(tour, "ann")
    assert store.tour("lobby") == tour and store.layout("lobby") is None
    assert store.tours() == [tour]
    assert store.delete_tour("lobby") and store.tours() == []


def test_a_tours_cycle_starts_when_it_was_last_saved(engine: Engine) -> None:
    store = WallStore(engine)
    page = TourPage(grid=Grid(cols=1, rows=1, tiles=[]))
    tour = Tour(name="rounds", title="Rounds", pages=[page])
    assert store.tour_saved_at("rounds") is None
    before = time.time()
    store.save_tour(tour, "ann")
    first = store.tour_saved_at("rounds")
    assert first is not None and before <= first <= time.time()
    store.save_tour(tour.model_copy(update={"dwell_s": 30}), "ann")  # a new cycle
    second = store.tour_saved_at("rounds")
    assert second is not None and second >= first
