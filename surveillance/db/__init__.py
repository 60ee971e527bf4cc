"""The node's database: engine from the configuration, schema brought up to date by Alembic.

Cases, evidence records, custody entries, wall layouts and tours, users, sessions, API
tokens and the audit log live here; one migration chain (``migrations/``) covers them all.
Every package declares its tables as ORM classes on the one base in :mod:`.orm`, so one
metadata describes the database, and a test checks it against the migrations.

SQLite (the default, one file in the data directory) runs in WAL mode with every
transaction started ``BEGIN IMMEDIATE``: transactions that read the chain head and then
append to it must not interleave, and SQLite's default deferred transactions would let two
of them read the same head. PostgreSQL serialises the same appends with row locks
(``SELECT ... FOR UPDATE`` on the case).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import ConnectionPoolEntry

from surveillance.config.models import AppConfig
from surveillance.errors import SurveillanceError

SQLITE_FILE = "cases.db"  # the name predates the wall's tables; kept for existing nodes
SQLITE_FILE_MODE = 0o600  # password hashes, session and token hashes, the audit log
SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")
PRIVATE_DIR_MODE = 0o700
SQLITE_BUSY_TIMEOUT_MS = 30_000  # a writer waits this long for another one to finish
MIGRATIONS_DIR = Path(__file__).with_name("migrations")


class StoreOutdated(SurveillanceError):
    """The database schema is not at the version this code expects."""


def database_url(config: AppConfig) -> str:
    """The configured URL (with its password), or the default SQLite file's."""
    if config.database.url is not None:
        return config.database.url.get_secret_value()
    return f"sqlite:///{config.server.data_dir / SQLITE_FILE}"


def database_secrets(config: AppConfig) -> set[str]:
    """The database password, for the redactor."""
    if config.database.url is None:
        return set()
    password = make_url(config.database.url.get_secret_value()).password
    return {str(password)} if password else set()


def create_db_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        _private_sqlite_files(Path(parsed.database))
    engine = create_engine(url, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Take transaction control from the sqlite3 module so BEGIN IMMEDIATE is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")  # custody entries survive a power cut
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _private_sqlite_files(path: Path) -> None:
    """Create the database file readable by the service's user only, and tighten the files
    of a node made before that. SQLite creates its -wal and -shm files with the database
    file's permissions (unix VFS ``findCreateFileMode``), so the main file's mode is theirs.
    """
    path.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, SQLITE_FILE_MODE))
    for suffix in SQLITE_COMPANIONS:
        companion = path.with_name(path.name + suffix)
        with contextlib.suppress(FileNotFoundError):
            mode = companion.lstat().st_mode  # never follow (and chmod) a planted link
            if stat.S_ISREG(mode) and mode & 0o777 != SQLITE_FILE_MODE:
                companion.chmod(SQLITE_FILE_MODE)


def _alembic_config(engine: Engine) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration (creates it in an empty database)."""
    command.upgrade(_alembic_config(engine), "head")


def check_current(engine: Engine) -> None:
    """Raise StoreOutdated unless the schema is at the newest migration (no changes)."""
    head = ScriptDirectory.from_config(_alembic_config(engine)).get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current != head:
        raise StoreOutdated(
            f"case database schema is at {current or 'nothing'}, expected {head}: "
            "start the service once to migrate it"
        )
