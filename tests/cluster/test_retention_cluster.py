"""Retention in cluster mode: two nodes' retention over one PostgreSQL index and one shared
recordings directory. One pass at a time (an advisory lock): the node without the turn
removes nothing, every expired segment goes once (its file unlinked by one node, never
found "already gone" by the other), the open segment its owner writes stays."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import text

from surveillance import db
from surveillance.config.models import RecordingConfig, RecordingMode, RecordingStream
from surveillance.db.advisory import RETENTION_LOCK
from surveillance.local_postgres import LocalPostgres
from surveillance.recordings.policy import CameraRecordingPolicy
from surveillance.recordings.records import SegmentRecord
from surveillance.recordings.store import RecordingStore
from surveillance.services.retention import FILE_ALREADY_GONE, OnRemoved, Retention
from tests.recordings.conftest import DAY, record
from tests.waits import wait_until

pytestmark = pytest.mark.postgresql

CAMERAS = ("a", "b", "c")
POLICIES = {
    c: CameraRecordingPolicy(RecordingMode.CONTINUOUS, RecordingStream.MAIN, 1) for c in CAMERAS
}


def test_one_node_at_a_time_removes_each_segment_once(
    postgres: LocalPostgres, tmp_path: Path
) -> None:
    url = postgres.new_database()
    engines = [db.create_db_engine(url) for _ in range(2)]  # one per node
    db.upgrade(engines[0])
    root = tmp_path / "shared" / "recordings"
    stores = [RecordingStore(engine) for engine in engines]
    removed: list[list[tuple[list[int], str]]] = [[], []]

    def told(node: int) -> OnRemoved:
        def on_removed(segments: Sequence[SegmentRecord], reason: str) -> None:
            removed[node].append(([s.id for s in segments], reason))

        return on_removed

    nodes = [
        Retention(store, root, RecordingConfig(), POLICIES, told(i), exclusive=store.retention_turn)
        for i, store in enumerate(stores)
    ]
    try:
        now = time.time()
        old = [
            record(stores[0], root, c, now - 3 * DAY + i * 60) for c in CAMERAS for i in range(4)
        ]
        recent = [record(stores[0], root, c, now - 3600) for c in CAMERAS]
        # Camera a's owner is writing this one (open, days old): never removed.
        writing = stores[0].open_segment("a", "main", "a/main/open-{id}.mp4", now - 2 * DAY,
                                         "h264", 1, 1)  # fmt: skip
        open_file = root / f"a/main/open-{writing}.mp4"
        open_file.write_bytes(b"being written")

        # While node 0 holds the turn, node 1's pass removes nothing.
        with stores[0].retention_turn() as ours:
            assert ours
            assert nodes[1].run_once(now) == []
            assert all((root / s.path).is_file() for s in old)
            with stores[1].retention_turn() as theirs:
                assert not theirs

        # Both passes at once, many times: each segment removed by exactly one of them.
        for _ in range(3):
            start = threading.Barrier(2)

            def run(node: Retention, start: threading.Barrier) -> None:
                start.wait()
                node.run_once(now)

            threads = [threading.Thread(target=run, args=(n, start)) for n in nodes]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
        ids = [i for node in removed for batch, _ in node for i in batch]
        assert sorted(ids) == sorted(s.id for s in old)  # all expired ones, each once
        assert not any(FILE_ALREADY_GONE in why for node in removed for _, why in node)
        assert not any((root / s.path).exists() for s in old)
        assert all((root / s.path).is_file() for s in recent)
        assert open_file.is_file()
        assert [s.id for s in stores[1].open_segments()] == [writing]

        # A node that dies holding the turn (its session ends) does not keep it.
        dead = engines[0].connect()
        assert dead.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": RETENTION_LOCK}).scalar()
        with stores[1].retention_turn() as theirs:
            assert not theirs
        dead.invalidate()  # the session closes, as a killed node's does

        def free() -> bool:
            with stores[1].retention_turn() as theirs:
                return theirs

        wait_until(free, 30, "the turn free once its holder's session ended")
    finally:
        for engine in engines:
            engine.dispose()
