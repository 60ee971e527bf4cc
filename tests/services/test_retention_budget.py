"""The disk budget removing footage still inside its retention says so: a WARNING, a node
figure for the metrics, and the status of each camera it took footage from.

Real index, real files, the real free space of the test's file system: the budget is set
above what is free (as when another program has filled the disk), nothing is faked.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from surveillance import db
from surveillance.catalog import Catalog
from surveillance.config.models import AppConfig
from surveillance.recordings.records import SegmentRecord
from surveillance.recordings.store import RecordingStore
from surveillance.services.ingest import IngestService
from surveillance.services.recorder import RecorderService
from surveillance.services.retention import FILE_ALREADY_GONE, REMOVED_EXPIRED, OnRemoved
from tests.recordings.conftest import DAY, record

CAMERAS = ("a", "b")


def recorder(
    tmp_path: Path,
    store: RecordingStore,
    min_free_bytes: int,
    on_removed: OnRemoved | None = None,
) -> RecorderService:
    config = AppConfig.model_validate(
        {
            "server": {"data_dir": str(tmp_path)},
            "recording": {
                "dir": str(tmp_path / "recordings"),
                "min_free_bytes": min_free_bytes,
                "default": {"mode": "off", "retain_days": 7},
            },
            "platforms": [{"id": "town", "name": "Town"}],
            "cameras": [
                {"id": c, "name": c, "platform": "town", "url": f"rtsp://127.0.0.1:9/{c}"}
                for c in CAMERAS
            ],
        }
    )
    catalog = Catalog.from_config(config)
    ingest = IngestService(catalog, config.ingest, str)
    return RecorderService(catalog, ingest, store, config, on_removed=on_removed)


def test_footage_removed_inside_its_retention_is_told_loudly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = db.create_db_engine(f"sqlite:///{tmp_path / 'cases.db'}")
    db.upgrade(engine)
    store = RecordingStore(engine)
    root = tmp_path / "recordings"
    now = time.time()
    expired = record(store, root, "a", now - 10 * DAY)
    recent = [record(store, root, "a", now - 3600), record(store, root, "b", now - 1800)]
    held = record(store, root, "b", now - 900)
    store.add_hold("C-1", "b", held.start_at, held.end_at or 0.0, "alice")

    # Room enough: only the expired segment goes, quietly.
    roomy = recorder(tmp_path, store, min_free_bytes=0)
    with caplog.at_level(logging.WARNING):
        assert [s.id for s in roomy.run_retention()] == [expired.id]
    assert not caplog.records
    assert roomy.removed_within_retention_bytes == 0
    assert "removed" not in (roomy.status("a").detail or "")

    # Another program filled the disk: everything not held goes, and it is said.
    full = recorder(tmp_path, store, min_free_bytes=shutil.disk_usage(tmp_path).free + 10**12)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        removed = full.run_retention()
    assert sorted(s.id for s in removed) == sorted(s.id for s in recent)
    assert all(not (root / s.path).exists() for s in (expired, *recent))
    assert (root / held.path).exists()  # a hold outranks the budget
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    size = sum(s.bytes for s in recent)
    assert f"({size} bytes)" in warnings[0] and "still inside its retention" in warnings[0]
    assert "min_free_bytes" in warnings[0] and "cameras: a, b" in warnings[0]
    assert full.removed_within_retention_bytes == size
    for segment in recent:
        detail = full.status(segment.camera_id).detail or ""
        assert f"{segment.bytes} bytes of footage inside its retention removed" in detail
        assert "recording is off" in detail  # what it said before is kept
    engine.dispose()


def test_footage_of_a_camera_taken_out_of_the_config_and_files_deleted_by_hand(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A camera no longer configured keeps its footage for recording.default's retention
    (7 days here), not for ever; a segment whose file someone deleted is removed in its
    turn, and the audit hook and the log say its file was already gone."""
    engine = db.create_db_engine(f"sqlite:///{tmp_path / 'cases.db'}")
    db.upgrade(engine)
    store = RecordingStore(engine)
    root = tmp_path / "recordings"
    now = time.time()
    old_of_gone_camera = record(store, root, "retired", now - 8 * DAY)
    young_of_gone_camera = record(store, root, "retired", now - 6 * DAY)
    deleted_by_hand = record(store, root, "a", now - 9 * DAY)
    (root / deleted_by_hand.path).unlink()
    told: list[tuple[list[int], str]] = []

    def on_removed(segments: Sequence[SegmentRecord], reason: str) -> None:
        told.append(([s.id for s in segments], reason))

    with caplog.at_level(logging.WARNING):
        removed = recorder(tmp_path, store, 0, on_removed).run_retention()
    assert sorted(s.id for s in removed) == sorted([old_of_gone_camera.id, deleted_by_hand.id])
    assert (root / young_of_gone_camera.path).exists()
    assert sorted(told) == sorted(
        [
            ([old_of_gone_camera.id], REMOVED_EXPIRED),
            ([deleted_by_hand.id], f"{REMOVED_EXPIRED}; {FILE_ALREADY_GONE}"),
        ]
    )
    assert any(
        "already gone" in r.getMessage() and deleted_by_hand.path in r.getMessage()
        for r in caplog.records
    )
    engine.dispose()
