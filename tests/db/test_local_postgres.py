"""The throwaway PostgreSQL the demo and the cluster tests start: a restart keeps what was
committed (on the same port), and stop removes the server and its directory."""

from __future__ import annotations

import psycopg
import pytest

from surveillance.local_postgres import LocalPostgres


@pytest.mark.postgresql
def test_restart_keeps_data_and_stop_removes_everything() -> None:
    cluster = LocalPostgres()
    cluster.start()
    try:
        url = cluster.new_database("kept").replace("+psycopg", "")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (x int)")
            conn.execute("INSERT INTO t VALUES (7)")
        port = cluster.port
        cluster.restart()
        assert cluster.port == port
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT x FROM t").fetchone() == (7,)
        with pytest.raises(ValueError, match="letters, digits"):
            cluster.new_database("x; DROP DATABASE kept")
    finally:
        cluster.stop()
    assert not cluster.root.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=5)
