"""A database outage under a recording node: the recorder says so once per stream, keeps
its open segment going across the outage (a segment whose row cannot be closed is not
ended), closes it once the database is back (with the file's own hash), and records on.
A real PostgreSQL of the module's own, stopped and started again; a real simulator camera;
a real node, alone or as the one node of a cluster (which reads on through an outage
nobody can claim in)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from surveillance.api.node import Node
from surveillance.config.models import AppConfig
from surveillance.local_postgres import LocalPostgres
from surveillance.services.camera_recorder import DATABASE_DOWN
from surveillance.services.recorder import RecordingState
from surveillance.simulator import Simulator
from tests.own_postgres import own_postgres
from tests.waits import eventually

__all__ = ["own_postgres"]  # the fixture

pytestmark = [pytest.mark.rtsp, pytest.mark.postgresql]

OUTAGE_S = 6.0  # several segment lengths: rollovers fail while it lasts
ALL_TIME = (0.0, 1e12)


def config(tmp_path: Path, url: str, simulator: Simulator, cluster: bool) -> AppConfig:
    data: dict[str, Any] = {
        "server": {"data_dir": str(tmp_path / "data")},
        "database": {"url": url},
        "recording": {
            "segment_s": 2, "fragment_s": 0.5, "min_free_bytes": 0,
            "default": {"mode": "continuous"},
        },
        "events": {"diagnosis": {"enabled": False}},
        "platforms": [{"id": "p", "name": "P"}],
        "cameras": [{"id": "cam", "name": "cam", "platform": "p", "url": simulator.url("cam00")}],
    }  # fmt: skip
    if cluster:
        data["cluster"] = {
            "enabled": True, "node_id": "solo", "url": "http://127.0.0.1:9", "lease_s": 3,
            "renew_s": 1, "shared_dir": str(tmp_path / "shared"),
        }  # fmt: skip
    return AppConfig.model_validate(data)


@pytest.mark.parametrize("cluster", [False, True], ids=["one-node", "cluster"])
async def test_a_database_outage_pauses_the_index_once_and_it_catches_up(
    cluster: bool,
    own_postgres: LocalPostgres,
    simulator: Simulator,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="surveillance.services.camera_recorder")
    node = Node.build(config(tmp_path, own_postgres.new_database(), simulator, cluster))
    await node.start()
    try:

        def closed() -> int:
            return sum(1 for s in node.recordings.segments("cam", "main", *ALL_TIME) if s.end_at)

        await eventually(lambda: closed() >= 2, "two segments recorded", 60)
        own_postgres.halt()
        halted_at = time.time()
        try:
            await asyncio.sleep(OUTAGE_S)  # the outage itself: what is checked comes after
        finally:
            own_postgres.resume()
        resumed_at = time.time()
        await eventually(
            lambda: node.recorder.status("cam").state is RecordingState.RECORDING,
            "recording again",
            60,
        )
        await eventually(lambda: closed() >= 4, "segments after the outage", 60)
        segments = node.recordings.segments("cam", "main", *ALL_TIME)
        for segment in segments:
            if segment.end_at is None:
                continue  # the one being written
            path = node.config.recording_root() / segment.path
            assert hashlib.sha256(path.read_bytes()).hexdigest() == segment.sha256, segment
        # One segment spans the outage: no hole in the footage.
        assert any(s.start_at < halted_at and (s.end_at or 0) > resumed_at for s in segments), [
            (s.start_at, s.end_at) for s in segments
        ]
    finally:
        await node.stop()
    said = [r for r in caplog.records if DATABASE_DOWN in r.getMessage()]
    assert len(said) <= 1, [r.getMessage() for r in said]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
