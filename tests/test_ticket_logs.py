"""Tickets never reach the log: `surveillance serve` in a child process (its real logging
set-up, real uvicorn), its output captured, a WebSocket opened on /api/live/mse with a
ticket in the query (refused: no node minted it) and plain requests carrying one; uvicorn's
lines for them name the route and the outcome, never the ticket."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as websocket_connect

from tests.service import free_port
from tests.waits import wait_until

pytestmark = pytest.mark.integration
TICKET = "tIcKeT-9f8e7d6c5b4a39281706_never-in-a-log"
START_S = 60


def test_uvicorns_lines_never_carry_a_ticket(tmp_path: Path) -> None:
    port = free_port()
    config = {
        "server": {"data_dir": str(tmp_path / "data"), "port": port},
        "events": {"diagnosis": {"enabled": False}},
        "platforms": [{"id": "town", "name": "Town"}],
        "cameras": [{"id": "cam", "name": "cam", "platform": "town",
                     "url": "rtsp://127.0.0.1:9/nothing-here", "enabled": False}],
    }  # fmt: skip
    config_path = tmp_path / "node.yaml"
    config_path.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "surveillance.cli", "serve", "--config", str(config_path)]
    log_path = tmp_path / "node.log"
    with log_path.open("w+") as log:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"

            def up() -> bool:
                try:
                    return httpx.get(f"{url}/login", timeout=2).status_code < 500
                except httpx.HTTPError:
                    return False

            wait_until(up, START_S, "the node serving")
            socket_url = (
                f"ws://127.0.0.1:{port}/api/live/mse?camera=cam&stream=main&ticket={TICKET}"
            )
            with pytest.raises(InvalidStatus) as refused:
                websocket_connect(socket_url, origin=url, open_timeout=10)
            assert refused.value.response.status_code == 403
            httpx.get(f"{url}/api/live/mse?camera=cam&ticket={TICKET}", timeout=10)
            httpx.get(f"{url}/login?ticket={TICKET}", timeout=10)
            wait_until(lambda: "/login?ticket=" in log_path.read_text(), 20, "the access line")
        finally:
            child.terminate()
            child.wait(20)
    output = log_path.read_text()
    # The lines are there (a filter that dropped them would hide a broken page too)...
    assert "WebSocket /api/live/mse?camera=cam&stream=main&ticket=***" in output, output
    assert "/login?ticket=***" in output
    # ...without the ticket, in any form.
    assert TICKET not in output and TICKET[:12] not in output
