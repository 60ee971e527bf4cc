"""Migration 0012: the cluster tables come and go with it, and ``events.node_id`` is added
as NULL to the rows already there (raised before there were nodes) and taken out again by
the downgrade without losing them. On SQLite too: the one chain runs everywhere."""

from __future__ import annotations

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, inspect, text

from surveillance import db

CLUSTER_TABLES = {"cluster_nodes", "camera_leases", "camera_status"}


def _alembic(engine: Engine) -> AlembicConfig:
    # As surveillance.db.upgrade builds it: no alembic.ini, the engine handed over.
    config = AlembicConfig()
    config.set_main_option("script_location", str(db.MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def _shape(engine: Engine) -> tuple[set[str], set[str]]:
    schema = inspect(engine)
    tables = set(schema.get_table_names())
    return tables & CLUSTER_TABLES, {column["name"] for column in schema.get_columns("events")}


def test_cluster_tables_and_events_node_id_come_and_go_with_0012(engine: Engine) -> None:
    command.downgrade(_alembic(engine), "0011")
    assert _shape(engine)[0] == set() and "node_id" not in _shape(engine)[1]
    with engine.begin() as connection:  # an event raised by the code before 0012
        connection.execute(
            text(
                "INSERT INTO events (type, severity, key, summary, detail, state, started_at,"
                " last_seen_at, updated_at) VALUES ('camera.offline', 'major', 'k', 's', '{}',"
                " 'new', 1, 1, 1)"
            )
        )

    db.upgrade(engine)
    db.check_current(engine)
    tables, columns = _shape(engine)
    assert tables == CLUSTER_TABLES and "node_id" in columns
    with engine.begin() as connection:
        assert connection.execute(text("SELECT key, node_id FROM events")).all() == [("k", None)]
        connection.execute(text("UPDATE events SET node_id = 'node-a'"))
        connection.execute(
            text(
                "INSERT INTO event_snapshots (event_id, jpeg, width, height, captured_at)"
                " SELECT id, :jpeg, 1, 1, 1 FROM events"
            ),
            {"jpeg": b"jpeg"},
        )

    command.downgrade(_alembic(engine), "0011")
    assert _shape(engine)[0] == set() and "node_id" not in _shape(engine)[1]
    with engine.connect() as connection:
        assert connection.execute(text("SELECT key FROM events")).all() == [("k",)]
        # The table was altered in place, not copied: its snapshot (ON DELETE CASCADE) is
        # still there, and on SQLite event ids are still never reused.
        assert connection.execute(text("SELECT count(*) FROM event_snapshots")).scalar_one() == 1
        if engine.dialect.name == "sqlite":
            ddl = connection.execute(
                text("SELECT sql FROM sqlite_master WHERE name = 'events'")
            ).scalar_one()
            assert "AUTOINCREMENT" in ddl
