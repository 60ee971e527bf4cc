"""Migration 0009: a layout's ``alarm_tile`` lives in its stored document; older layouts read
as "the last tile", and the downgrade takes the field out so the code before it can read
them again."""

from __future__ import annotations

import json

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, text

from surveillance import db
from surveillance.wall.layouts import Layout, Tile
from surveillance.wall.store import WallStore


def _alembic(engine: Engine) -> AlembicConfig:
    # As surveillance.db.upgrade builds it: no alembic.ini, the engine handed over.
    config = AlembicConfig()
    config.set_main_option("script_location", str(db.MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def _bodies(engine: Engine) -> dict[str, dict[str, object]]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT name, body FROM wall_layouts")).all()
    return {name: json.loads(body) for name, body in rows}


def test_alarm_tile_is_kept_and_the_downgrade_removes_it_and_nothing_else(engine: Engine) -> None:
    store = WallStore(engine)
    tiles = [Tile(x=0, y=0, camera="c1"), Tile(x=1, y=0, camera="c2")]
    store.save_layout(
        Layout(name="room", title="Room", cols=2, rows=1, tiles=tiles, alarm_tile=0), "ann"
    )
    store.save_layout(Layout(name="desk", title="Desk", cols=2, rows=1, tiles=tiles), "ann")
    room = store.layout("room")
    assert room is not None and room.alarm_tile == 0
    # A body written before the field existed, as revision 0008's code wrote it.
    old = {"cols": 1, "rows": 1, "tiles": [], "name": "old", "title": "Old", "display": "wall"}
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO wall_layouts VALUES ('old', :body, 0, 'ann')"),
            {"body": json.dumps(old)},
        )
    older = store.layout("old")
    assert older is not None and older.alarm_tile is None and older.display == "wall"

    before = _bodies(engine)
    command.downgrade(_alembic(engine), "0008")
    after = _bodies(engine)
    for name, body in before.items():
        assert after[name] == {k: v for k, v in body.items() if k != "alarm_tile"}, name

    db.upgrade(engine)
    db.check_current(engine)
    room = store.layout("room")
    assert room is not None and room.alarm_tile is None  # the setting went with the downgrade
