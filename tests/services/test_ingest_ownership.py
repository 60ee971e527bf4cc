"""Cluster mode's ingest: a camera another node holds is never connected here.

Real workers and streams; the cameras' URLs point at a closed port (no server is needed to
see whether a worker runs). What holds() says is the test's own: the lease loop that sets it
in a node is tested in tests/cluster/test_ownership.py.
"""

from __future__ import annotations

import dataclasses

import pytest

from surveillance.catalog import Catalog
from surveillance.config.models import AppConfig
from surveillance.errors import CameraElsewhere, CameraUnavailable
from surveillance.media.health import HealthSnapshot, StreamState
from surveillance.services.ingest import ELSEWHERE, IngestService, IngestSource


def service() -> IngestService:
    config = AppConfig.model_validate(
        {
            "ingest": {"backoff_initial_s": 5, "backoff_max_s": 5},
            "platforms": [{"id": "p", "name": "P"}],
            "cameras": [
                {"id": "mine", "name": "Mine", "platform": "p", "url": "rtsp://127.0.0.1:1/a"},
                {
                    "id": "theirs",
                    "name": "Theirs",
                    "platform": "p",
                    "url": "rtsp://127.0.0.1:1/b",
                    "sub_url": "rtsp://127.0.0.1:1/b2",
                },
                {
                    "id": "lazy",
                    "name": "Lazy",
                    "platform": "p",
                    "url": "rtsp://127.0.0.1:1/c",
                    "mode": "on-demand",
                },
            ],
        }
    )
    return IngestService(Catalog.from_config(config), config.ingest, lambda text: text)


def running(ingest: IngestService) -> set[str]:
    """The stream keys ("cam", "cam/sub") whose worker runs."""
    return {s.key for _, s in ingest.streams() if _worker(ingest, s.key).running}


def _worker(ingest: IngestService, stream_key: str) -> IngestSource:
    for slot in ingest._slots.values():  # the slots' workers: what the test is about
        if slot.stream.key == stream_key:
            return slot.worker
    raise AssertionError(stream_key)


async def test_a_camera_not_held_gets_no_worker_and_follows_its_owner() -> None:
    ingest = service()
    held = {"mine"}
    remote: dict[tuple[str, bool], HealthSnapshot] = {}
    ingest.set_ownership(
        lambda camera_id: camera_id in held,
        lambda camera_id, sub: remote.get((camera_id, sub)),
        lambda camera_id: "node-b",
    )
    told: list[str] = []
    ingest.add_health_listener(told.append)
    await ingest.start()
    try:
        # Always-on: only the held camera's worker runs; on demand: none asked, none runs.
        assert running(ingest) == {"mine"}
        with pytest.raises(CameraElsewhere) as elsewhere:
            ingest.ensure_connected("theirs")
        assert elsewhere.value.node_id == "node-b" and "node-b" in str(elsewhere.value)
        assert isinstance(elsewhere.value, CameraUnavailable)  # answered 503 by old callers
        with pytest.raises(CameraElsewhere):
            await ingest.ready_stream("theirs", sub=True, timeout_s=0.1)
        assert running(ingest) == {"mine"}
        # Its health: offline, "no status yet", until its owner's arrives.
        health = ingest.camera_health("theirs")
        assert health.state is StreamState.OFFLINE and health.main.last_error == ELSEWHERE
        owners = ingest.camera_health("mine").main
        remote[("theirs", False)] = dataclasses.replace(owners, state=StreamState.ONLINE)
        ingest.notify_health("theirs")
        assert told[-1] == "theirs"
        assert ingest.camera_health("theirs").state is StreamState.ONLINE
        assert ingest.camera_health("theirs").sub is not None  # its sub: still "no status"

        # The lease moves: the new holder's worker starts, the old one's stops (joined).
        held.clear()
        held.add("theirs")
        await ingest.ownership_changed(["mine", "theirs"])
        assert running(ingest) == {"theirs", "theirs/sub"}
        assert ingest.camera_health("mine").main.last_error == ELSEWHERE
        # Read here now: "held by another node" was where it was, not an error of its own.
        taken = ingest.stream("theirs").health_snapshot()  # (its own errors may follow)
        assert taken.last_error != ELSEWHERE and taken.warning != ELSEWHERE
        with pytest.raises(CameraElsewhere):
            ingest.ensure_connected("mine")
        # A camera held again starts only if it is always-on; on demand stays parked.
        held.add("lazy")
        await ingest.ownership_changed(["lazy"])
        assert "lazy" not in running(ingest)
        ingest.ensure_connected("lazy")
        assert "lazy" in running(ingest)
    finally:
        await ingest.stop()


async def test_one_node_holds_every_camera() -> None:
    """No set_ownership (cluster mode off): today's behaviour."""
    ingest = service()
    await ingest.start()
    try:
        assert running(ingest) == {"mine", "theirs", "theirs/sub"}
        ingest.ensure_connected("lazy")
        assert "lazy" in running(ingest)
    finally:
        await ingest.stop()
