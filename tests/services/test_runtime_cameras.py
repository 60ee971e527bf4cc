"""Cameras added to and removed from a running node's catalog (as the GB/T 28181 registry
does with a platform's channels), with real RTSP cameras from the simulator, the real app
under uvicorn and its real SQLite database.

One node for the module. Its catalog is changed on the node's own event loop, as the
registry does (``ServiceProcess.on_loop``); what the tests look at is what an operator
sees (the API), what the recorder wrote (the index, the files) and the node's threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from surveillance.auth.roles import Role
from surveillance.catalog import Camera, Catalog, runtime_camera
from surveillance.config.models import AppConfig, IngestMode
from surveillance.media.health import ErrorKind
from surveillance.services.camera_recorder import CLOSED_REMOVED, CLOSED_STOPPED_DELIVERING
from surveillance.services.mosaic import MosaicRequest
from surveillance.services.recorder import RecordingState
from surveillance.simulator import Simulator
from tests.auth_helpers import bearer
from tests.conftest import CAMERA_PASSWORD
from tests.service import ServiceProcess
from tests.waits import wait_until

pytestmark = pytest.mark.rtsp

GB_PLATFORM = "gbp"  # a gb28181 platform whose `recording` records its channels
CHANNEL = "34020000001320000001"
NO_SOURCE = f"{GB_PLATFORM}.{CHANNEL}"  # a GB channel on a node without a GB source
UNREACHABLE = "platform offline: no keepalive for 180 s"


@pytest.fixture(scope="module")
def service(
    simulator: Simulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    data_dir = tmp_path_factory.mktemp("runtime-cameras")
    config = AppConfig.model_validate(
        {
            "server": {"data_dir": str(data_dir)},
            "ingest": {"connect_timeout_s": 3, "read_timeout_s": 6, "stall_after_s": 4,
                       "backoff_initial_s": 0.2, "backoff_max_s": 1.0, "ring_seconds": 3},
            "recording": {"segment_s": 2, "fragment_s": 0.5, "min_free_bytes": 0},
            "events": {"diagnosis": {"enabled": False}},
            "platforms": [{"id": "town", "name": "Town"}],
            "cameras": [{"id": "fixed", "name": "Fixed", "platform": "town",
                         "url": simulator.url("cam00")}],
            "gb28181": {"platforms": [
                {"id": GB_PLATFORM, "name": "GB platform", "device_id": "34020000002000000002",
                 "password": "not-used-here", "recording": {"mode": "continuous"}},
            ]},
        }
    )  # fmt: skip
    process = ServiceProcess(config)
    process.start()
    try:
        wait_until(lambda: state(process, "fixed") == "online", 30, "the fixed camera online")
        yield process
    finally:
        process.stop()


def state(service: ServiceProcess, camera_id: str) -> str:
    return service.node.ingest.camera_health(camera_id).state.value


def cameras(service: ServiceProcess, headers: dict[str, str]) -> dict[str, dict[str, object]]:
    response = httpx.get(f"{service.url}/api/cameras", headers=headers, timeout=30)
    response.raise_for_status()
    return {camera["id"]: camera for camera in response.json()}


def snapshot(service: ServiceProcess, camera_id: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(
        f"{service.url}/api/cameras/{camera_id}/snapshot.jpg", headers=headers, timeout=30
    )


def upsert(service: ServiceProcess, *added: Camera) -> None:
    catalog: Catalog = service.node.catalog
    service.on_loop(lambda: catalog.upsert(added))


def ingest_threads(camera_id: str) -> list[str]:
    """The camera's main stream's worker thread, while it runs (media/worker.py names it)."""
    return [t.name for t in threading.enumerate() if t.name == f"ingest:{camera_id}"]


def test_cameras_added_at_run_time_are_seen_played_recorded_scoped_and_removed(
    service: ServiceProcess, simulator: Simulator
) -> None:
    node = service.node
    admin = bearer(node)
    recorded = runtime_camera(
        id="rt-rec", name="Runtime recorded", platform_id=GB_PLATFORM,
        url=simulator.url("cam01"), mode=IngestMode.ALWAYS_ON,
    )  # fmt: skip
    on_demand = runtime_camera(
        id="rt-demand", name="Runtime on demand", platform_id="town",
        url=simulator.url("cam02"), tags=["traffic"],
    )  # fmt: skip
    upsert(service, recorded, on_demand)

    # In the list with their health, in their platform's roll-up, the GB one by its vendor.
    listed = cameras(service, admin)
    assert {"fixed", "rt-rec", "rt-demand"} <= listed.keys()
    assert listed["rt-demand"]["state"] == "idle" and listed["rt-demand"]["tags"] == ["traffic"]
    wait_until(lambda: state(service, "rt-rec") == "online", 30, "the runtime camera online")
    platforms = httpx.get(f"{service.url}/api/platforms", headers=admin, timeout=30).json()
    gb = next(p for p in platforms if p["id"] == GB_PLATFORM)
    assert gb["total"] == 1 and gb["online"] == 1, gb

    # Snapshots: the always-on one, and the on-demand one, which connects for it.
    for camera_id in ("rt-rec", "rt-demand"):
        shot = snapshot(service, camera_id, admin)
        assert shot.status_code == 200 and shot.content[:2] == b"\xff\xd8", camera_id

    # Recorded as its platform's policy says; the on-demand one (default: off) is not.
    assert node.recorder.policies["rt-rec"].records
    assert not node.recorder.policies["rt-demand"].records
    wait_until(
        lambda: len(node.recordings.segments("rt-rec", None, 0, 1e12)) >= 2,
        40,
        "segments of the runtime camera",
    )
    assert listed["rt-demand"]["recording"]["state"] == RecordingState.OFF.value  # type: ignore[index]

    # A user limited to the GB platform sees its camera, not the others, and may put it on a
    # layout; a camera of another platform on the layout is refused as unknown.
    scoped = bearer(node, "gb-operator", Role.OPERATOR, platforms=[GB_PLATFORM])
    assert set(cameras(service, scoped)) == {"rt-rec"}
    layout = {"name": "gb", "title": "GB", "cols": 1, "rows": 1,
              "tiles": [{"x": 0, "y": 0, "camera": "rt-rec"}]}  # fmt: skip
    saved = httpx.put(f"{service.url}/api/layouts/gb", json=layout, headers=scoped, timeout=30)
    assert saved.status_code == 200, saved.text
    layout["tiles"] = [{"x": 0, "y": 0, "camera": "rt-demand"}]
    refused = httpx.put(f"{service.url}/api/layouts/gb", json=layout, headers=scoped, timeout=30)
    assert refused.status_code == 422, refused.text

    # A new name and tags keep the stream (and its recording); the list says the new name.
    stream = node.ingest.stream("rt-rec")
    renamed = runtime_camera(
        id="rt-rec", name="Renamed", platform_id=GB_PLATFORM, url=simulator.url("cam01"),
        mode=IngestMode.ALWAYS_ON, tags=["traffic"],
    )  # fmt: skip
    upsert(service, renamed)
    assert node.ingest.stream("rt-rec") is stream
    assert cameras(service, admin)["rt-rec"]["name"] == "Renamed"
    wait_until(
        lambda: node.recorder.status("rt-rec").state is RecordingState.RECORDING,
        10,
        "still recording",
    )

    # Removed: gone from the list and the roll-up, its stream's thread ends, its recording
    # closes, its footage stays, and retention treats it as a camera out of the config.
    removed_at = time.time()
    service.on_loop(lambda: node.catalog.remove(["rt-rec", "rt-demand"]))
    listed = cameras(service, admin)
    assert "rt-rec" not in listed and "rt-demand" not in listed
    platforms = httpx.get(f"{service.url}/api/platforms", headers=admin, timeout=30).json()
    assert next(p for p in platforms if p["id"] == GB_PLATFORM)["total"] == 0
    assert snapshot(service, "rt-rec", admin).status_code == 404
    wait_until(lambda: not ingest_threads("rt-rec"), 20, "the removed camera's thread ended")
    assert stream.consumers == 0

    def finished() -> bool:
        """No segment or gap of it left open. The last segment closes as the camera is
        removed, or a moment before: the writer thread may see its stream end first."""
        segments = node.recordings.segments("rt-rec", None, 0, 1e12)
        gaps = node.recordings.gaps("rt-rec", None, 0, 1e12)
        return (
            bool(segments)
            and segments[-1].closed_reason in (CLOSED_REMOVED, CLOSED_STOPPED_DELIVERING)
            and all(s.camera_id != "rt-rec" for s in node.recordings.open_segments())
            and all(g.end_at is not None for g in gaps)
        )

    wait_until(finished, 10, "its last segment and gaps closed")
    kept = node.recordings.segments("rt-rec", None, 0, 1e12)
    assert len(kept) >= 2 and kept[-1].end_at is not None and kept[-1].end_at <= time.time()
    # The rename did not end a recording: only the removal did.
    assert CLOSED_REMOVED not in [segment.closed_reason for segment in kept[:-1]]
    assert all(Path(node.recorder.root / s.path).is_file() for s in kept)
    assert "rt-rec" not in node.recorder.policies
    node.recorder.run_retention(removed_at + 60)
    assert len(node.recordings.segments("rt-rec", None, 0, 1e12)) == len(kept)
    time.sleep(1)  # nothing is written for it any more
    assert len(node.recordings.segments("rt-rec", None, 0, 1e12)) == len(kept)
    assert state(service, "fixed") == "online"  # the rest of the node went on


def test_unreachable_and_sourceless_cameras_answer_at_once_with_their_reason(
    service: ServiceProcess, simulator: Simulator
) -> None:
    node = service.node
    admin = bearer(node)
    gb_channel = runtime_camera(
        id=NO_SOURCE, name="GB channel", platform_id=GB_PLATFORM, url=f"gb28181://gbp/{CHANNEL}"
    )
    # With credentials in its URL: the node's redactor learns them as it is added.
    reachable = runtime_camera(
        id="rt-flaky", name="Flaky", platform_id="town", url=simulator.url("auth")
    )
    assert CAMERA_PASSWORD in node.redactor(f"failed with {CAMERA_PASSWORD}")  # not yet known
    upsert(service, gb_channel, reachable)
    assert CAMERA_PASSWORD not in node.redactor(f"failed with {CAMERA_PASSWORD}")

    listed = cameras(service, admin)
    assert listed[NO_SOURCE]["state"] == "offline"
    assert listed[NO_SOURCE]["health"]["last_error"] == "no gb28181 source on this node"  # type: ignore[index]
    assert listed[NO_SOURCE]["url"] == f"gb28181://gbp/{CHANNEL}"
    assert "***" in str(listed["rt-flaky"]["url"]) and CAMERA_PASSWORD not in str(listed)
    # Recorded by its platform's policy: the recorder waits with the reason, nothing breaks.
    status = node.recorder.status(NO_SOURCE)
    assert status.state is RecordingState.WAITING, status
    refused = snapshot(service, NO_SOURCE, admin)
    assert refused.status_code == 503 and "no gb28181 source" in refused.text

    shot = snapshot(service, "rt-flaky", admin)
    assert shot.status_code == 200
    # A mosaic shows it throughout: its tile keeps asking for the camera while it is away.
    request = MosaicRequest("1", ("rt-flaky",), fps=5)
    lease = service.on_loop(lambda: node.mosaic.acquire(request))
    service.on_loop(lambda: node.ingest.set_unreachable("rt-flaky", UNREACHABLE))
    health = node.ingest.camera_health("rt-flaky").main
    assert (health.state.value, health.last_error_kind, health.last_error) == (
        "offline",
        ErrorKind.UNREACHABLE,
        UNREACHABLE,
    )
    started = time.monotonic()
    refused = snapshot(service, "rt-flaky", admin)
    assert refused.status_code == 503 and UNREACHABLE in refused.text
    assert time.monotonic() - started < 5  # not the 8 s wait for a first picture
    # It stays so, whatever its stopping worker reports as it ends.
    time.sleep(2)
    listed = cameras(service, admin)
    assert listed["rt-flaky"]["health"]["last_error"] == UNREACHABLE  # type: ignore[index]

    service.on_loop(lambda: node.ingest.set_unreachable("rt-flaky", None))
    wait_until(lambda: state(service, "rt-flaky") == "online", 20, "back for the mosaic")
    assert snapshot(service, "rt-flaky", admin).status_code == 200
    lease.release()

    # A new URL is a new stream; removed and added again, another: each one's pictures are
    # its own (no decoder or picture of the stream before is reused).
    before = node.ingest.stream("rt-flaky")
    moved = runtime_camera(
        id="rt-flaky", name="Flaky", platform_id="town", url=simulator.url("cam04")
    )
    for camera in (moved, reachable):
        if camera is reachable:
            service.on_loop(lambda: node.catalog.remove(["rt-flaky"]))
        changed_at = time.time()
        upsert(service, camera)
        assert node.ingest.stream("rt-flaky") is not before
        shot = snapshot(service, "rt-flaky", admin)
        assert shot.status_code == 200, shot.text
        captured = datetime.fromisoformat(shot.headers["X-Captured-At"]).timestamp()
        assert captured >= changed_at, (captured, changed_at)
        before = node.ingest.stream("rt-flaky")

    service.on_loop(lambda: node.catalog.remove([NO_SOURCE, "rt-flaky"]))
    assert not {NO_SOURCE, "rt-flaky"} & cameras(service, admin).keys()
