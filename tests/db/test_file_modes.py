"""The SQLite database holds password hashes: only the service's user may read it, its
WAL and shared-memory files too, whether the node is new or made before this was so."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import text

from surveillance import db


def modes(data_dir: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mode & 0o777 for p in data_dir.iterdir()}


def write_once(path: Path) -> None:
    engine = db.create_db_engine(f"sqlite:///{path}")
    try:
        db.upgrade(engine)
        with engine.begin() as conn:  # keeps the WAL and shared-memory files while open
            conn.execute(text("SELECT 1"))
            assert modes(path.parent) == {"cases.db": 0o600, "cases.db-wal": 0o600,
                                          "cases.db-shm": 0o600}  # fmt: skip
    finally:
        engine.dispose()


def test_a_new_database_is_private(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)  # the usual umask, which made it 0644 before
    try:
        write_once(tmp_path / "data" / "cases.db")
    finally:
        os.umask(old_umask)
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700


def test_an_older_nodes_database_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "cases.db"
    write_once(path)
    for name in ("cases.db", "cases.db-wal", "cases.db-shm"):
        if (tmp_path / name).exists():
            (tmp_path / name).chmod(0o644)
    write_once(path)
