"""Case-store fixtures: every store test runs on SQLite and on a real PostgreSQL.

The PostgreSQL cluster is a throwaway one started for the test session
(:class:`surveillance.local_postgres.LocalPostgres`, which the demo uses too: Debian's
``postgresql`` package in a temporary directory, on a free loopback port, fsync off, as
the ``postgres`` system user under root). Each test gets a database of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from surveillance import db
from surveillance.cases.store import CaseStores
from surveillance.local_postgres import LocalPostgres, pg_bin
from tests.conftest import missing

# The name tests used before the class moved into the package.
PostgresCluster = LocalPostgres


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    bin_dir = pg_bin()
    if bin_dir is None:
        missing("PostgreSQL binaries are missing (install Debian's postgresql)")
    cluster = LocalPostgres(bin_dir)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'cases.db'}"
    else:
        url = request.getfixturevalue("postgres").new_database()
    engine = db.create_db_engine(url)
    db.upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def stores(engine: Engine) -> CaseStores:
    return CaseStores(engine)
