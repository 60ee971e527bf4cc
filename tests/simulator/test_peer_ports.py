"""The simulator's status names each client's own TCP port per mount, so a test can tell
which process holds which camera's connection (the cluster tests, bench/cluster_ingest.py)."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from surveillance.simulator import Simulator
from tests.waits import wait_until

pytestmark = pytest.mark.rtsp

ESTABLISHED = "01"  # /proc/net/tcp "st" column (include/net/tcp_states.h)


def connections_to(port: int) -> set[int]:
    """Local ports of this machine's established TCP connections to ``port``."""
    found = set()
    for line in Path("/proc/net/tcp").read_text(encoding="ascii").splitlines()[1:]:
        fields = line.split()
        local, remote = (int(a.rsplit(":", 1)[1], 16) for a in fields[1:3])
        if fields[3] == ESTABLISHED and remote == port:
            found.add(local)
    return found


def test_status_names_the_port_of_each_client(simulator: Simulator) -> None:
    before = connections_to(simulator.port)
    with av.open(simulator.url("cam07"), options={"rtsp_transport": "tcp"}) as client:
        next(client.decode(video=0))
        mine = connections_to(simulator.port) - before
        assert len(mine) == 1, mine
        mount = simulator.status()["cam07"]
        assert mount["peer_ports"] == sorted(mine) and mount["clients"] == 1
        assert simulator.status()["cam08"]["peer_ports"] == []
    wait_until(lambda: simulator.status()["cam07"]["peer_ports"] == [], 15, "client gone")
