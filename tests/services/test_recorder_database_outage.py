"""A database outage under a recording node: the recorder says so once per stream, never
touches a finished file again, closes the rows it could not close once the database is
back (with the file's own hash), and records again. A real PostgreSQL of the module's own,
stopped and started again; a real simulator camera; a real node (one node, no cluster)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from surveillance.api.node import Node
from surveillance.config.models import AppConfig
from surveillance.local_postgres import LocalPostgres, pg_bin
from surveillance.services.camera_recorder import DATABASE_DOWN
from surveillance.services.recorder import RecordingState
from surveillance.simulator import Simulator
from tests.waits import eventually

pytestmark = [pytest.mark.rtsp, pytest.mark.postgresql]

OUTAGE_S = 6.0  # several segment lengths: rollovers fail while it lasts
ALL_TIME = (0.0, 1e12)


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[LocalPostgres]:
    """The module's own server: stopping it must not disturb other tests."""
    bin_dir = pg_bin()
    assert bin_dir is not None, "PostgreSQL binaries are missing (install Debian's postgresql)"
    server = LocalPostgres(bin_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def config(tmp_path: Path, url: str, simulator: Simulator) -> AppConfig:
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
    return AppConfig.model_validate(data)


async def test_a_database_outage_pauses_the_index_once_and_it_catches_up(
    own_postgres: LocalPostgres,
    simulator: Simulator,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="surveillance.services.camera_recorder")
    node = Node.build(config(tmp_path, own_postgres.new_database(), simulator))
    await node.start()
    try:

        def closed() -> int:
            return sum(1 for s in node.recordings.segments("cam", "main", *ALL_TIME) if s.end_at)

        await eventually(lambda: closed() >= 2, "two segments recorded", 60)
        own_postgres.halt()
        try:
            await eventually(
                lambda: DATABASE_DOWN in (node.recorder.status("cam").detail or ""),
                "the recorder says the database is away",
            )
            await asyncio.sleep(OUTAGE_S)  # the outage itself: what is checked comes after
        finally:
            own_postgres.resume()
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
    finally:
        await node.stop()
    paused = [r for r in caplog.records if "paused" in r.getMessage()]
    assert len(paused) == 1, [r.getMessage() for r in paused]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
