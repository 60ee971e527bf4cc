"""`surveillance serve` with the id of a live node: refused in one clear line naming the node,
not a traceback (real node, real second process, real PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from surveillance.config.models import AppConfig
from tests.cases.conftest import PostgresCluster
from tests.service import ServiceProcess, free_port

pytestmark = pytest.mark.postgresql

TIMEOUT_S = 120


def _config(port: int, database: str, root: Path) -> dict[str, object]:
    return {
        "server": {"data_dir": str(root / f"data-{port}"), "port": port},
        "database": {"url": database},
        "cluster": {"enabled": True, "node_id": "twin", "url": f"http://127.0.0.1:{port}",
                    "shared_dir": str(root / "shared")},
    }  # fmt: skip


def test_a_second_process_with_a_live_nodes_id_is_one_line(
    postgres: PostgresCluster, tmp_path: Path
) -> None:
    database = postgres.new_database()
    first = ServiceProcess(AppConfig())
    first.config = AppConfig.model_validate(_config(first.port, database, tmp_path))
    first.start()
    try:
        second = tmp_path / "second.yaml"
        second.write_text(yaml.safe_dump(_config(free_port(), database, tmp_path)))
        done = subprocess.run(
            [sys.executable, "-m", "surveillance.cli", "serve", "--config", str(second)],
            capture_output=True, text=True, timeout=TIMEOUT_S, env=os.environ, check=False,
        )  # fmt: skip
    finally:
        first.stop()
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "Traceback" not in output, output
    refused = [line for line in output.splitlines() if "node not started" in line]
    assert len(refused) == 1, output
    expected = "CRITICAL [twin] surveillance.api.node: node not started: node id 'twin' is in use"
    assert expected in refused[0], refused[0]
    assert refused[0][:24].endswith("Z"), refused[0]  # 2026-12-02T06:38:24.120Z
