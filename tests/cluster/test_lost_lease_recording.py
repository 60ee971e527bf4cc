"""A node paused past its camera's lease, taken over, then resumed: its recorder never
touches the camera's files or rows again. Two real nodes over a real PostgreSQL record a
simulator camera; the holder's recorder is held up with packets queued (what a SIGSTOP of
its process does to it), the holder stops renewing and beating, the other node takes the
camera over and salvages the open segment (services/recording_reconcile.py). When the
recorder goes on, the salvaged file keeps its bytes and the hash its row holds, no row of
the camera is changed, and the old node says so once and records the camera no more."""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from surveillance.api.node import Node
from surveillance.cluster.rendezvous import assign
from surveillance.config.models import AppConfig
from surveillance.recordings.store import RecordingStore
from surveillance.services.camera_recorder import LEASE_LOST
from surveillance.services.recording_reconcile import RECOVERED
from surveillance.simulator import Simulator
from tests.cases.conftest import PostgresCluster
from tests.cluster.test_ownership import until

pytestmark = [pytest.mark.rtsp, pytest.mark.postgresql]

CAMERAS = {"w": "cam00", "x": "cam01", "y": "cam02", "z": "cam03"}  # id -> simulator path
ALL_TIME = (0.0, 1e12)


def config(tmp_path: Path, url: str, node_id: str, simulator: Simulator) -> AppConfig:
    data: dict[str, Any] = {
        "server": {"data_dir": str(tmp_path / node_id)},
        "database": {"url": url},
        "cluster": {
            "enabled": True, "node_id": node_id, "url": f"http://{node_id}.test:8080",
            "lease_s": 3, "renew_s": 0.5, "shared_dir": str(tmp_path / "shared"),
        },
        "recording": {
            "segment_s": 300, "fragment_s": 0.5, "min_free_bytes": 0,
            "default": {"mode": "continuous"},
        },
        "events": {"diagnosis": {"enabled": False}},
        "platforms": [{"id": "p", "name": "P"}],
        "cameras": [
            {"id": c, "name": c, "platform": "p", "url": simulator.url(path)}
            for c, path in CAMERAS.items()
        ],
    }  # fmt: skip
    return AppConfig.model_validate(data)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_a_node_resumed_after_losing_its_lease_leaves_the_recordings_alone(
    postgres: PostgresCluster,
    simulator: Simulator,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="surveillance.services.camera_recorder")
    url = postgres.new_database()
    nodes: list[Node] = []
    resume = threading.Event()
    try:
        for node_id in ("a", "b"):
            nodes.append(Node.build(config(tmp_path, url, node_id, simulator)))
            await nodes[-1].start()
        a, b = nodes
        assert a.ownership is not None and b.ownership is not None and a.membership is not None
        wanted = assign(CAMERAS, [("a", 1.0), ("b", 1.0)])
        mine = {c for c, owner in wanted.items() if owner == "a"}
        assert mine  # (rendezvous over these names gives a some)
        await until(lambda: a.ownership.held() == mine, 60, "a holds its cameras")  # type: ignore[union-attr]
        camera = sorted(mine)[0]
        # The recorder itself: the writer thread pumps it, and only it is held up here.
        recorder = a.recorder._recorders[camera]
        await until(lambda: recorder.open_ref is not None, 60, "a records the camera")
        writing = recorder.open_ref
        assert writing is not None

        # A stand-in for SIGSTOP, which cannot stop one thread of a process: the writer
        # thread waits inside pump() while the camera's packets queue up.
        pumps = 0
        paused = threading.Event()
        pump = recorder.pump

        def held_up_pump() -> None:
            nonlocal pumps
            paused.set()
            resume.wait()
            try:
                pump()
            finally:  # (counted when it fails, too: the assertions below say why)
                pumps += 1

        recorder.pump = held_up_pump  # type: ignore[method-assign]
        await until(paused.is_set, 10, "a's recorder held up")
        # The rest of a is paused too: no renewal, no heartbeat, no watchdog (which would
        # stop the camera's ingest when the lease's local deadline passes; a paused
        # process runs none, and resumes with its packets still queued).
        await a.ownership.stop_renewing()
        await a.membership.stop_beating()
        watchdog = a.ownership._watchdog_task
        assert watchdog is not None
        watchdog.cancel()

        await until(lambda: b.ownership.holds(camera), 40, "b takes the camera over")  # type: ignore[union-attr]
        store = RecordingStore(b.engine)

        def salvaged_rows() -> list[Any]:
            return [
                s for s in store.segments(camera, None, *ALL_TIME)
                if s.closed_reason == RECOVERED and writing.path == b.recorder.root / s.path
            ]  # fmt: skip

        await until(salvaged_rows, 30, "b salvages a's open segment")
        [salvaged] = salvaged_rows()
        salvaged_file = b.recorder.root / salvaged.path
        salvaged_bytes = salvaged_file.read_bytes()
        assert salvaged.sha256 == sha256(salvaged_file) and salvaged.bytes == len(salvaged_bytes)
        # Whatever the camera's rows are now (b's own open segment goes on as b writes it).
        closed_before = [s for s in store.segments(camera, None, *ALL_TIME)]
        gaps_before = store.gaps(camera, None, *ALL_TIME)
        assert recorder._subscription.pending() > 0  # packets queued while it was held up

        # A resumes: its recorder writes nothing more, drops its segment, says so once.
        resume.set()
        await until(lambda: pumps >= 10, 30, "a's recorder pumps on")
        status = recorder.status()
        assert status.detail == LEASE_LOST and recorder.open_ref is None
        assert salvaged_file.read_bytes() == salvaged_bytes
        assert sha256(salvaged_file) == salvaged.sha256
        assert store.segment(salvaged.id) == salvaged
        assert [s for s in store.segments(camera, None, *ALL_TIME)][: len(closed_before)] == (
            closed_before
        )
        gaps_after = {g.id: g for g in store.gaps(camera, None, *ALL_TIME)}
        assert all(gaps_after[g.id] == g for g in gaps_before if g.end_at is not None)
        said = [r.getMessage() for r in caplog.records if "stopped here" in r.getMessage()]
        # Once, for the camera (and any other a held and recorded when it was paused), and
        # never for the cameras a handed off to b at the start: those closed normally.
        assert len([m for m in said if m.startswith(f"recording {camera}/")]) == 1, said
        assert all(m.split("/")[0].split()[-1] in mine for m in said), said
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        # b still records the camera (its own segment, unhindered).
        await until(lambda: b.recorder.status(camera).detail != LEASE_LOST, 10, "b records")
    finally:
        resume.set()
        for node in reversed(nodes):
            await node.stop()
