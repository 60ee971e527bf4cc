"""The cluster services as the node builds, starts and stops them (api/node.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from surveillance.api.node import Node
from surveillance.cluster.errors import NodeIdTaken
from surveillance.cluster.store import ClusterStore
from surveillance.config.models import AppConfig
from surveillance.db import create_db_engine
from surveillance.events.records import EventFilter, EventType
from tests.cases.conftest import PostgresCluster

pytestmark = pytest.mark.postgresql


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
