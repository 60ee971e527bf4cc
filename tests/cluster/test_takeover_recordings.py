"""A camera taken over from a dead node: the dead node's open segments and open gap of it
are reconciled at the take-over (api/node.py wires Ownership's on_takeover to the
recorder), not left open until some node restarts: one with whole fragments closed at
its file's real end (a real fragmented MP4 of the simulator's packets, cut as a crash
leaves it), one without removed; nothing of a live node's is touched."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from surveillance.api.node import Node
from surveillance.cluster.rendezvous import assign
from surveillance.config.models import AppConfig
from surveillance.media.recording_file import SegmentWriter
from surveillance.recordings.layout import SEGMENT_ID_PLACEHOLDER, segment_path
from surveillance.recordings.store import RecordingStore
from surveillance.services.recording_reconcile import GAP_NOT_RUNNING, RECOVERED
from surveillance.simulator import Simulator
from tests.cases.conftest import PostgresCluster
from tests.cluster.test_ownership import until
from tests.media.camera_packets import packets_of

pytestmark = [pytest.mark.rtsp, pytest.mark.postgresql]

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


def crashed_file(simulator: Simulator, path: Path, scratch: Path) -> float:
    """A segment file as a node killed mid-segment leaves it: its whole fragments, then
    part of the next. Returns the whole fragments' duration."""
    packets = packets_of(simulator, ("cam00",))["cam00"]
    writer = SegmentWriter(scratch, packets[0], fragment_s=0.5)
    for packet in packets[1 : len(packets) * 2 // 3]:
        writer.add(packet)
    whole = writer.progress()  # the file holds exactly these fragments now
    data = scratch.read_bytes()[: whole.bytes]
    writer.close()
    next_fragment = scratch.read_bytes()[whole.bytes : whole.bytes + 500]
    path.write_bytes(data + next_fragment)
    return whole.duration_s


def leave_open(node: Node, camera: str, stream: str, content: bytes) -> tuple[int, Path]:
    """A segment a node recording ``camera`` has open: its row (through the node's fence)
    and its file, just written to (young: a live writer's, by its age)."""
    assert node.ownership is not None
    store = RecordingStore(node.engine, node.ownership.fence)
    start_at = time.time() - 20
    template = segment_path(camera, stream, start_at, SEGMENT_ID_PLACEHOLDER)
    segment_id = store.open_segment(camera, stream, template, start_at, "h264", 640, 360)
    path = node.recorder.root / segment_path(camera, stream, start_at, segment_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return segment_id, path


async def test_a_dead_nodes_open_recordings_are_closed_at_take_over(
    postgres: PostgresCluster, simulator: Simulator, tmp_path: Path
) -> None:
    crashed = tmp_path / "crashed.mp4"
    whole_s = crashed_file(simulator, crashed, tmp_path / "scratch.mp4")
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
        salvaged, salvaged_file = leave_open(a, dead_camera, "main", crashed.read_bytes())
        empty, empty_file = leave_open(a, dead_camera, "sub", b"no whole fragment yet")
        dead_gap = RecordingStore(a.engine).add_gap(dead_camera, "sub", time.time() - 60, "down")
        live, live_file = leave_open(b, live_camera, "main", b"being written")
        live_gap = RecordingStore(b.engine).add_gap(live_camera, "sub", time.time() - 60, "down")

        # A dies: no heartbeat, no renewals. B takes its cameras a lease later.
        await a.ownership.stop_renewing()
        assert a.membership is not None
        await a.membership.stop_beating()
        await until(lambda: b.ownership.holds(dead_camera), 40, "b takes over a's camera")  # type: ignore[union-attr]

        store = RecordingStore(b.engine)
        # At once, not 5 minutes later (the files are seconds old), as a start would: the
        # segment with whole fragments closed where they end, the other removed.
        await until(
            lambda: not {salvaged, empty} & {s.id for s in store.open_segments()},
            20, "the dead node's open segments reconciled",
        )  # fmt: skip
        closed = store.segment(salvaged)
        assert closed is not None and closed.closed_reason == RECOVERED
        assert closed.end_at == pytest.approx(closed.start_at + whole_s, abs=0.01)
        assert salvaged_file.is_file()
        assert store.segment(empty) is None and not empty_file.exists()
        # Its gaps end: the one it had open, and the one from the salvaged end.
        gaps = {g.id: g for g in store.gaps(dead_camera, None, *ALL_TIME)}
        assert gaps[dead_gap].end_at is not None
        [after] = [g for g in gaps.values() if g.start_at == closed.end_at]
        assert after.reason == GAP_NOT_RUNNING and after.end_at is not None
        # The live node's open segment and gap are its own business.
        assert live in {s.id for s in store.open_segments()}
        assert live_file.read_bytes() == b"being written"
        [gap] = [g for g in store.gaps(live_camera, "sub", *ALL_TIME) if g.id == live_gap]
        assert gap.end_at is None
    finally:
        for node in reversed(nodes):
            await node.stop()
