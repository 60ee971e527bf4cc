"""A PostgreSQL server of a test module's own, for tests that stop or restart it (the
session's shared one must not be disturbed under the other tests)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from surveillance.local_postgres import LocalPostgres, pg_bin


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[LocalPostgres]:
    bin_dir = pg_bin()
    assert bin_dir is not None, "PostgreSQL binaries are missing (install Debian's postgresql)"
    server = LocalPostgres(bin_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
