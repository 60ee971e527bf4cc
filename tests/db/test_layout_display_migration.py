"""Migration 0006: a layout's ``display`` lives in its stored document; older layouts read as
``desk``, and the downgrade takes the field out so the code before it can read them again."""

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


def _display(store: WallStore, name: str) -> str:
    layout = store.layout(name)
    assert layout is not None, name
    return layout.display


def test_display_is_kept_and_a_layout_stored_without_it_opens_at_the_desk(engine: Engine) -> None:
    store = WallStore(engine)
    tiles = [Tile(x=0, y=0, camera="c1")]
    store.save_layout(
        Layout(name="led", title="LED", cols=1, rows=1, tiles=tiles, display="wall"), "ann"
    )
    assert _display(store, "led") == "wall"
    # A body written before the field existed, as revision 0005's code wrote it.
    old = {"cols": 1, "rows": 1, "tiles": [], "name": "old", "title": "Old"}
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO wall_layouts VALUES ('old', :body, 0, 'ann')"),
            {"body": json.dumps(old)},
        )
    assert _display(store, "old") == "desk"


def test_downgrade_removes_display_and_keeps_the_rest(engine: Engine) -> None:
    store = WallStore(engine)
    tiles = [Tile(x=0, y=0, camera="c1")]
    store.save_layout(
        Layout(name="led", title="LED", cols=1, rows=1, tiles=tiles, display="wall"), "ann"
    )
    store.save_layout(Layout(name="desk", title="Desk", cols=1, rows=1, tiles=[]), "ann")
    before = _bodies(engine)
    assert before["led"]["display"] == "wall"

    command.downgrade(_alembic(engine), "0005")
    after = _bodies(engine)
    # On the way down, revision 0009 took out the later alarm_tile (its own test).
    later = {"alarm_tile"}
    for name, body in before.items():
        assert "display" not in after[name]
        assert after[name] == {k: v for k, v in body.items() if k != "display" and k not in later}

    db.upgrade(engine)
    db.check_current(engine)
    assert _display(store, "led") == "desk"  # the setting went with the downgrade
