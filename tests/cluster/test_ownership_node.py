"""The cluster services as the node builds, starts and stops them (api/node.py)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pytest

from surveillance.api.node import Node
from surveillance.cluster.errors import NodeIdTaken
from surveillance.cluster.rendezvous import assign
from surveillance.cluster.store import ClusterStore
from surveillance.config.models import AppConfig
from surveillance.db import create_db_engine
from surveillance.events.records import EventFilter, EventType
from surveillance.recordings.store import RecordingStore
from surveillance.services.camera_recorder import ELSEWHERE
from surveillance.services.recording_state import RecordingState
from surveillance.simulator import Simulator
from tests.cases.conftest import PostgresCluster
from tests.cluster.test_ownership import until

pytestmark = pytest.mark.postgresql

ALL_TIME = (0.0, 1e12)


def node_config(data_dir: Path, url: str | None, cluster: bool) -> AppConfig:
    data: dict[str, Any] = {
        "server": {"data_dir": str(data_dir)},
        "platforms": [{"id": "p", "name": "P"}],
        # On demand, at a closed port: nothing connects unless asked, no server needed.
        "cameras": [
            {"id": c, "name": c, "platform": "p", "url": f"rtsp://127.0.0.1:1/{c}"}
            | {"mode": "on-demand"}
            for c in ("x", "y")
        ],
    }
    if url is not None:
        data["database"] = {"url": url}
    if cluster:
        data["cluster"] = {
            "enabled": True, "node_id": "a", "url": "http://127.0.0.1:8080",
            "lease_s": 3, "renew_s": 0.5, "shared_dir": str(data_dir / "shared"),
        }  # fmt: skip
    return AppConfig.model_validate(data)


async def test_node_joins_holds_refuses_a_twin_and_leaves(
    postgres: PostgresCluster, tmp_path: Path
) -> None:
    single = Node.build(node_config(tmp_path / "single", None, cluster=False))
    assert (single.cluster_store, single.membership, single.ownership) == (None, None, None)
    single.engine.dispose()

    url = postgres.new_database()
    node = Node.build(node_config(tmp_path / "a", url, cluster=True))
    assert node.ownership is not None and node.membership is not None
    await node.start()
    try:
        # Alone, it holds every leased camera, and answers for them itself.
        assert node.ownership.held() == {"x", "y"}
        assert node.ownership.owner("x") == "a" and node.ownership.owner_url("x") is None
        running = node.events.search(EventFilter(types=[EventType.NODE_RUNNING], active=True))
        assert [e.key for e in running.events] == ["node.running:a"]

        # A second process under the same id does not start, saying why.
        twin = Node.build(node_config(tmp_path / "twin", url, cluster=True))
        with pytest.raises(NodeIdTaken, match=r"in use by a live node at http://127\.0\.0\.1:8080"):
            await twin.start()
        twin.engine.dispose()
        assert node.ownership.held() == {"x", "y"}  # the twin took nothing
    finally:
        await node.stop()

    # A clean stop leaves and releases: the others need not wait for the leases.
    engine = create_db_engine(url)
    try:
        store = ClusterStore(engine)
        [row] = store.nodes()
        assert row.id == "a" and row.stopped_at is not None
        assert {lease.camera_id for lease in store.leases()} == {"x", "y"}
        assert all(lease.remaining_s <= 0 for lease in store.leases())
    finally:
        engine.dispose()


@pytest.mark.rtsp
async def test_two_nodes_record_each_camera_once_and_write_no_gap_for_the_others(
    postgres: PostgresCluster, simulator: Simulator, tmp_path: Path
) -> None:
    url = postgres.new_database()
    cameras = ("cam00", "cam01", "cam02", "cam03")
    nodes: list[Node] = []

    def config(node_id: str) -> AppConfig:
        data = {
            "server": {"data_dir": str(tmp_path / node_id)},
            "database": {"url": url},
            "cluster": {
                "enabled": True, "node_id": node_id, "url": f"http://{node_id}.test:8080",
                "lease_s": 3, "renew_s": 0.5, "shared_dir": str(tmp_path / "shared"),
            },
            "ingest": {"backoff_initial_s": 0.2, "backoff_max_s": 1, "ring_seconds": 2},
            "recording": {
                "dir": str(tmp_path / "shared" / "recordings"), "segment_s": 2,
                "fragment_s": 0.5, "min_free_bytes": 0, "default": {"mode": "continuous"},
            },
            "events": {"diagnosis": {"enabled": False}},
            "platforms": [{"id": "town", "name": "Town"}],
            "cameras": [
                {"id": c, "name": c, "platform": "town", "url": simulator.url(c)} for c in cameras
            ],
        }  # fmt: skip
        return AppConfig.model_validate(data)

    def held(node: Node) -> frozenset[str]:
        assert node.ownership is not None
        return node.ownership.held()

    try:
        for node_id in ("a", "b"):
            nodes.append(Node.build(config(node_id)))
            await nodes[-1].start()
        wanted = assign(cameras, [("a", 1.0), ("b", 1.0)])
        await until(
            lambda: all(held(n) == {c for c, o in wanted.items() if o == n.config.cluster.node_id}
                        for n in nodes),
            40, "cameras spread over both nodes",
        )  # fmt: skip
        # Each node records what it holds; of the others it says where they are recorded.
        for node in nodes:
            for camera in cameras:
                state = partial(node.recorder.status, camera)
                if camera in held(node):
                    recording = partial(lambda s: s().state is RecordingState.RECORDING, state)
                    await until(recording, 20, f"{camera} recording")
                else:  # (a camera handed over a moment ago: its recorder looks 5 times a second)
                    elsewhere = partial(lambda s: s().detail == ELSEWHERE, state)
                    await until(elsewhere, 5, f"{camera} said to be recorded elsewhere")
    finally:
        for node in reversed(nodes):
            await node.stop()
    engine = create_db_engine(url)
    try:
        store = RecordingStore(engine)
        recorded = {c for c in cameras if store.segments(c, None, *ALL_TIME)}
        assert recorded == set(cameras)
        # Gaps: only the nodes' own (a stop, a connection), never "held by another node".
        reasons = {g.reason for c in cameras for g in store.gaps(c, None, *ALL_TIME)}
        assert not any("another node" in r or ELSEWHERE in r for r in reasons), reasons
    finally:
        engine.dispose()
