"""A camera taken over from a dead node: the dead node's open segment and open gap of it
are reconciled at the take-over (api/node.py wires Ownership's on_takeover to the
recorder), not left open until some node restarts; nothing of a live node's is touched."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from surveillance.api.node import Node
from surveillance.cluster.rendezvous import assign
from surveillance.config.models import AppConfig
from surveillance.recordings.layout import SEGMENT_ID_PLACEHOLDER, segment_path
from surveillance.recordings.store import RecordingStore
from tests.cases.conftest import PostgresCluster
from tests.cluster.test_ownership import until

pytestmark = pytest.mark.postgresql

CAMERAS = ("w", "x", "y", "z")
ALL_TIME = (0.0, 1e12)


def config(tmp_path: Path, url: str, node_id: str) -> AppConfig:
    data: dict[str, Any] = {
        "server": {"data_dir": str(tmp_path / node_id)},
        "database": {"url": url},
        "cluster": {
            "enabled": True, "node_id": node_id, "url": f"http://{node_id}.test:8080",
            "lease_s": 3, "renew_s": 0.5, "shared_dir": str(tmp_path / "shared"),
        },
        "platforms": [{"id": "p", "name": "P"}],
        # On demand, at a closed port: nothing connects unless asked, no server needed.
        "cameras": [
            {"id": c, "name": c, "platform": "p", "url": f"rtsp://127.0.0.1:1/{c}",
             "mode": "on-demand"}
            for c in CAMERAS
        ],
    }  # fmt: skip
    return AppConfig.model_validate(data)


def leave_open(node: Node, camera: str) -> tuple[int, int, Path]:
    """What a node recording ``camera`` has open at any moment: a segment (row through the
    node's fence, file just written to) and a gap."""
    assert node.ownership is not None
    store = RecordingStore(node.engine, node.ownership.fence)
    now = time.time()
    template = segment_path(camera, "main", now - 20, SEGMENT_ID_PLACEHOLDER)
    segment_id = store.open_segment(camera, "main", template, now - 20, "h264", 320, 240)
    path = node.recorder.root / segment_path(camera, "main", now - 20, segment_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"no whole fragment yet")  # young: a live writer's, by its age
    gap_id = store.add_gap(camera, "sub", now - 60, "camera not delivering")
    return segment_id, gap_id, path


async def test_a_dead_nodes_open_recordings_are_closed_at_take_over(
    postgres: PostgresCluster, tmp_path: Path
) -> None:
    url = postgres.new_database()
    nodes: list[Node] = []
    try:
        for node_id in ("a", "b"):
            nodes.append(Node.build(config(tmp_path, url, node_id)))
            await nodes[-1].start()
        a, b = nodes
        assert a.ownership is not None and b.ownership is not None
        wanted = assign(CAMERAS, [("a", 1.0), ("b", 1.0)])
        mine = {n: {c for c, o in wanted.items() if o == n} for n in ("a", "b")}
        assert mine["a"] and mine["b"]  # (rendezvous over these names gives each some)
        await until(
            lambda: a.ownership.held() == mine["a"] and b.ownership.held() == mine["b"],  # type: ignore[union-attr]
            40, "cameras spread over both nodes",
        )  # fmt: skip
        dead_camera, live_camera = sorted(mine["a"])[0], sorted(mine["b"])[0]
        dead_segment, dead_gap, dead_file = leave_open(a, dead_camera)
        live_segment, live_gap, live_file = leave_open(b, live_camera)

        # A dies: no heartbeat, no renewals. B takes its cameras a lease later.
        await a.ownership.stop_renewing()
        assert a.membership is not None
        await a.membership.stop_beating()
        await until(lambda: b.ownership.holds(dead_camera), 40, "b takes over a's camera")  # type: ignore[union-attr]

        store = RecordingStore(b.engine)
        # At once, not 5 minutes later (the file is seconds old): the dead node's segment,
        # with no whole fragment, is removed with its file, as the crash recovery does.
        await until(
            lambda: dead_segment not in {s.id for s in store.open_segments()},
            10, "the dead node's open segment reconciled",
        )  # fmt: skip
        assert store.segment(dead_segment) is None and not dead_file.exists()
        [gap] = [g for g in store.gaps(dead_camera, "sub", *ALL_TIME) if g.id == dead_gap]
        assert gap.end_at is not None
        # The live node's open segment and gap are its own business.
        assert live_segment in {s.id for s in store.open_segments()}
        assert live_file.read_bytes() == b"no whole fragment yet"
        [gap] = [g for g in store.gaps(live_camera, "sub", *ALL_TIME) if g.id == live_gap]
        assert gap.end_at is None
    finally:
        for node in reversed(nodes):
            await node.stop()
