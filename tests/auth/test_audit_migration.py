"""Migration 0004 on a database that has lived under 0003: every audit entry stays readable,
entries get the id of the user who acted (not of a later bearer of the name), user names
get their look-alike keys, and the audit log is append-only again afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine
from sqlalchemy.exc import DatabaseError

from surveillance import db
from surveillance.auth.audit import AuditLog, AuditQuery

CYRILLIC_A = "\u0430"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def engine_at_0003(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'cases.db'}"
    else:
        url = request.getfixturevalue("postgres").new_database()
    engine = db.create_db_engine(url)
    config = AlembicConfig()
    config.set_main_option("script_location", str(db.MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    command.upgrade(config, "0003")
    yield engine
    engine.dispose()


def _user(name: str, created_at: float) -> dict[str, object]:
    return {
        "name": name,
        "role": "viewer",
        "password_hash": "x",
        "platforms": "[]",
        "cameras": "[]",
        "disabled": False,
        "created_at": created_at,
        "password_changed_at": created_at,
    }


def _entry(at: float, user: str, client: str = "10.0.0.1") -> dict[str, object]:
    return {
        "at": at,
        "user_name": user,
        "action": "snapshot",
        "camera_id": None,
        "client": client,
        "outcome": "ok",
        "detail": "{}",
    }


def test_existing_entries_get_the_id_of_who_acted_and_stay_readable(
    engine_at_0003: Engine,
) -> None:
    engine = engine_at_0003
    meta = sa.MetaData()
    users = sa.Table("users", meta, autoload_with=engine)
    audit = sa.Table("audit_log", meta, autoload_with=engine)
    with engine.begin() as connection:
        # "ann" was removed at some point and her name given to a new user at t=100.
        connection.execute(users.insert(), [_user("ann", 100.0), _user("cli", 1.0)])
        connection.execute(users.insert(), [_user(f"{CYRILLIC_A}nn", 5.0)])  # before the rule
        connection.execute(
            audit.insert(),
            [
                _entry(50.0, "ann"),  # the first ann's
                _entry(150.0, "ann"),  # today's ann's
                _entry(60.0, "bob"),  # a removed user's
                _entry(70.0, "cli", client="local"),  # the command line, not the user "cli"
            ],
        )
    db.upgrade(engine)

    with engine.connect() as connection:
        ids = dict(connection.execute(sa.select(users.c.name, users.c.id)).all())
        keys = dict(connection.execute(sa.text("SELECT name, name_key FROM users")).all())
    entries = AuditLog(engine).query(AuditQuery(limit=10))
    assert {(e.user, e.at): e.user_id for e in entries} == {
        ("ann", 50.0): None,
        ("ann", 150.0): ids["ann"],
        ("bob", 60.0): None,
        ("cli", 70.0): None,
    }
    assert [e.at for e in AuditLog(engine).query(AuditQuery(user_id=ids["ann"]))] == [150.0]
    # The Cyrillic name folds like the Latin one; the later of the two keeps its id apart.
    assert keys["ann"] == "ann"
    assert keys[f"{CYRILLIC_A}nn"].startswith("ann#")

    with pytest.raises(DatabaseError, match="append-only"), engine.begin() as connection:
        connection.execute(sa.text("UPDATE audit_log SET user_name = 'eve'"))
