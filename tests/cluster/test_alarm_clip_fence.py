"""Alarm clips in cluster mode: the node holding a camera keeps its alarm's clip; one whose
lease on the camera ran out while the clip was being collected writes none afterwards.
A real lease (PostgreSQL) lost the way a node cut off from the database loses it, the
real simulator's footage."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import pytest

from surveillance.config.models import EventsConfig
from surveillance.events.clips import ClipShelf
from surveillance.events.records import EventSpec, EventType, Severity
from surveillance.services.alarm_clips import AlarmClips
from surveillance.simulator import Simulator
from tests.cluster.test_ownership import CAMERAS, cluster_config, database, start_peer, until

__all__ = ["database"]

pytestmark = [pytest.mark.rtsp, pytest.mark.postgresql]

PRE_S, POST_S = 1.0, 8.0  # the window outlasts the lease's local deadline (lease_s 3)


def alarm(camera: str) -> EventSpec:
    return EventSpec(
        type=EventType.ZONE_MOTION, severity=Severity.ALARM, key=f"motion:{camera}:1",
        summary="Motion", camera_id=camera, platform_id="town", at=time.time(),
    )  # fmt: skip


async def test_a_node_that_lost_the_lease_keeps_no_clip(
    simulator: Simulator, database: str, tmp_path: Path
) -> None:
    config = cluster_config(simulator, database, tmp_path)
    a = await start_peer(config, database, "a")
    shelf = ClipShelf(tmp_path / "shared" / "event-clips", 100 * 1024 * 1024, shared=True)
    events = EventsConfig(alarm_clip_pre_s=PRE_S, alarm_clip_post_s=POST_S)
    clips = AlarmClips(shelf, a.events, a.ingest, a.ownership.catalog, None, events)
    await clips.start()
    try:
        held, lost = CAMERAS[0], CAMERAS[1]
        await until(lambda: a.ownership.held() == set(CAMERAS), 40, "a holds every camera")
        for camera in (held, lost):
            ring = a.ingest.stream(camera).ring
            await until(partial(lambda r: r.duration_s() >= 1.5, ring), 40, f"{camera} streaming")

        # Held throughout: the clip is kept.
        kept = a.events.raise_event(alarm(held))
        assert await clips.kept(kept.id) is not None

        # The lease runs out mid-window (no renewals: a node cut off from the database).
        dropped = a.events.raise_event(alarm(lost))
        await a.die()
        await until(lambda: not a.ownership.holds(lost), 10, "the lease's local deadline")
        assert await clips.kept(dropped.id) is None  # waits for the collection to end
        assert not shelf.has(dropped.id)
        assert not list(shelf.root.glob(f"{dropped.id}.*"))
    finally:
        clips.stop()
        await a.stop()
