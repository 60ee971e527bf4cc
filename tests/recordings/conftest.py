"""Recording-index fixtures: a migrated SQLite database in the test's directory (the store
tests that also run on PostgreSQL use the case tests' parametrised ``engine``), and
segment files of made-up bytes: the chain hashes whatever bytes a file holds."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from surveillance import db
from surveillance.recordings.layout import SEGMENT_ID_PLACEHOLDER, segment_path
from surveillance.recordings.records import SegmentRecord
from surveillance.recordings.store import RecordingStore
from tests.cases.conftest import engine, postgres

__all__ = ["engine", "postgres"]

DAY = 86400.0
T0 = 1_790_000_000.0  # 2026-09-21, a fixed epoch for readable tests


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = db.create_db_engine(f"sqlite:///{tmp_path / 'cases.db'}")
    db.upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def store(sqlite_engine: Engine) -> RecordingStore:
    return RecordingStore(sqlite_engine)


def record(
    store: RecordingStore,
    root: Path | None,
    camera_id: str,
    start_at: float,
    length_s: float = 60.0,
    stream: str = "main",
    content: bytes | None = None,
) -> SegmentRecord:
    """Open and close one segment the way the recorder does; with a root, its file too."""
    template = segment_path(camera_id, stream, start_at, SEGMENT_ID_PLACEHOLDER)
    segment_id = store.open_segment(camera_id, stream, template, start_at, "h264", 1280, 720)
    data = content if content is not None else f"{camera_id} {stream} {start_at}".encode() * 50
    if root is not None:
        path = root / segment_path(camera_id, stream, start_at, segment_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return store.close_segment(
        segment_id,
        start_at + length_s,
        len(data),
        hashlib.sha256(data).hexdigest(),
        int(length_s * 25),
        40,
        [(0.0, 40), (2.0, 1000)],
        "segment length",
    )
