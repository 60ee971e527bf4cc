"""Remote camera health between two real nodes (Node.build, started on one loop, one
PostgreSQL, the RTSP simulator): the node holding a camera publishes its health, the other
shows it in ``ingest.camera_health`` and pushes it to its health followers, within seconds."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from surveillance.api.node import Node
from surveillance.config.models import AppConfig
from surveillance.media.health import ErrorKind, StreamState
from surveillance.services.feeds import Feed
from surveillance.simulator import Simulator
from tests.cases.conftest import PostgresCluster
from tests.waits import eventually

pytestmark = [pytest.mark.rtsp, pytest.mark.postgresql]
WAIT_S = 40.0  # generous: a loaded two-core machine
CAMERAS = ("cam00", "cam01")
DOWN = "test: the camera's platform is down"


def node_config(
    simulator: Simulator, url: str, root: Path, node_id: str, capacity: float
) -> AppConfig:
    return AppConfig.model_validate(
        {
            "server": {"data_dir": str(root / node_id)},
            "database": {"url": url},
            "cluster": {
                "enabled": True, "node_id": node_id, "url": f"http://{node_id}.test:8080",
                "capacity": capacity, "lease_s": 3, "renew_s": 0.5,
                "shared_dir": str(root / "shared"),
            },
            "ingest": {"backoff_initial_s": 0.2, "backoff_max_s": 1, "ring_seconds": 2},
            "events": {"diagnosis": {"enabled": False}},
            "platforms": [{"id": "town", "name": "Town"}],
            "cameras": [
                {"id": c, "name": c, "platform": "town", "url": simulator.url(c)} for c in CAMERAS
            ],
        }
    )  # fmt: skip


@pytest.fixture
async def owner_and_other(
    simulator: Simulator, postgres: PostgresCluster, tmp_path: Path
) -> AsyncIterator[tuple[Node, Node]]:
    url = postgres.new_database()
    # Weighted rendezvous with a thousandfold capacity: every camera prefers the owner, so
    # none moves while the test looks (moving is the ownership tests' subject).
    owner = Node.build(node_config(simulator, url, tmp_path, "owner", 1000))
    other = Node.build(node_config(simulator, url, tmp_path, "other", 0.001))
    await owner.start()
    await other.start()
    try:
        yield owner, other
    finally:
        await other.stop()
        await owner.stop()


async def told(follower: Feed[str], camera: str) -> bool:
    """Whether the follower hears of ``camera`` within WAIT_S: the other camera's change
    may come first, in a batch of its own."""
    deadline = time.monotonic() + WAIT_S
    heard: set[str] = set()
    while camera not in heard and (left := deadline - time.monotonic()) > 0:
        heard |= await follower.changes(left)
    return camera in heard


async def test_the_owners_camera_health_shows_on_the_other_node(
    owner_and_other: tuple[Node, Node],
) -> None:
    owner, other = owner_and_other
    assert owner.ownership is not None and other.ownership is not None
    assert other.remote_health is not None and owner.health_publisher is not None
    await eventually(lambda: owner.ownership.held() == set(CAMERAS), "the owner holds both")  # type: ignore[union-attr]
    assert not any(other.ownership.holds(c) for c in CAMERAS)
    camera = CAMERAS[0]

    # Online on the owner: the other node, which never connects it, says so too.
    def remote_state(cam: str) -> StreamState:
        return other.ingest.camera_health(cam).main.state

    await eventually(lambda: remote_state(camera) is StreamState.ONLINE, "online elsewhere")
    shown = other.ingest.camera_health(camera).main
    assert shown.codec == "h264" and shown.width == 640  # the owner's figures, not defaults
    assert other.ingest.camera_health(camera).sub is None
    assert not other.ingest.stream(camera).health_snapshot().packets  # never read here

    # A change on the owner reaches the other node's ingest and its health followers.
    follower = other.health_events.subscribe(user_id=1)
    owner.ingest.set_unreachable(camera, DOWN)
    await eventually(lambda: other.ingest.camera_health(camera).main.last_error == DOWN,
                     "the owner's reason elsewhere")  # fmt: skip
    down = other.ingest.camera_health(camera).main
    assert down.state is StreamState.OFFLINE and down.last_error_kind is ErrorKind.UNREACHABLE
    assert await told(follower, camera)
    other.health_events.unsubscribe(follower)
    # The other camera is untouched: still the owner's word (its counters), online.
    untouched = other.ingest.camera_health(CAMERAS[1]).main
    assert untouched.state is StreamState.ONLINE and untouched.packets > 0

    # Back: the owner reconnects it, the other node shows it online again.
    owner.ingest.set_unreachable(camera, None)
    await eventually(lambda: remote_state(camera) is StreamState.ONLINE, "online again")
    assert other.remote_health.reloads >= 1  # the table was read at the first connection

    # The owner falls silent (paused, cut off from the database): its last word ages out
    # here rather than stay "online" for good, and the followers hear of it.
    follower = other.health_events.subscribe(user_id=1)
    await owner.health_publisher.stop()
    other.remote_health.stale_after_s = 3.0  # the test's: three missed republications
    await eventually(lambda: remote_state(camera) is StreamState.OFFLINE, "aged out")
    aged = other.ingest.camera_health(camera).main
    assert aged.last_error is not None and aged.last_error_kind is ErrorKind.OTHER
    assert aged.last_error.startswith("no status from node owner for "), aged.last_error
    assert aged.fps is None and aged.last_packet_age_s is not None
    assert aged.last_packet_age_s >= 3.0  # counted to now, not the owner's figure of then
    assert await told(follower, camera)
    other.health_events.unsubscribe(follower)
