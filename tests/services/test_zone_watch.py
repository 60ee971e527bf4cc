"""One camera's zone watcher fed real encoded packets through a real Stream, its alarms on
the real event bus (SQLite): a reconnect that changes the whole picture raises nothing
(the background starts over and warms), while the same change on one connection is motion.

Two streams run side by side, paced at the clips' 25 fps: each shows the intruder scene's
still view for a while, then the same view with a car parked in the zone while the camera
was away (encoded here with PyAV: a still picture that differs from the first in the zone
only; a change of the whole picture is not motion to the detector at all). On "reconnect"
the second clip's packets come with a new StreamInfo, as after a real reconnect; on "same"
they keep the first one's, and the parked car appears at once: motion.

A short outage in the middle of motion (the packets stop, then come back on a new
connection) keeps the one alarm going; a longer one than events.offline_after_s ends it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import pytest
from av.video.stream import VideoStream
from sqlalchemy import Engine

from surveillance.auth.audit import AuditLog
from surveillance.catalog import Catalog
from surveillance.config.models import AppConfig, ZoneMotionConfig
from surveillance.db import create_db_engine, upgrade
from surveillance.events.records import EventFilter, EventRecord, EventType
from surveillance.events.store import EventStore
from surveillance.media.packets import StreamInfo
from surveillance.media.source import stream_info
from surveillance.media.stream import Stream
from surveillance.services.event_bus import EventBus
from surveillance.services.zone_motion import CameraWatch, motion_key
from surveillance.simulator.clips import _encoder_options, ensure_clip
from surveillance.simulator.scenes import SceneGeometry, pictures
from surveillance.zones.records import ZoneRecord
from surveillance.zones.schedule import Schedule
from tests.conftest import CLIP_CACHE, SMALL_H264
from tests.waits import wait_until

STILL = replace(SMALL_H264, seconds=3.0, scene="intruder", event_at_s=3.0)  # nobody walks in
PARKED_S = 2.4  # whole frames at 25 fps
ZONE = ZoneRecord(
    camera_id="yard", name="path", points=((0.55, 0.45), (0.85, 0.45), (0.85, 0.85), (0.55, 0.85)),
    schedule=Schedule(), sensitivity=50, enabled=True, id=1, created_by="test", created_at=0.0,
    updated_at=0.0,
)  # fmt: skip
FPS = 25


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'node.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def parked(path: Path, before_s: float) -> Path:
    """The still view, ``before_s`` of it as it is, then with a bright car-sized block
    standing in the zone, encoded as the simulator encodes its clips."""
    return encoded(
        path, before_s + PARKED_S, lambda index: 0.6 if index >= before_s * FPS else None
    )


def pacing(index: int) -> float:
    """Someone pacing up and down the zone: the block's left edge at picture ``index``."""
    return 0.6 + 0.05 * (1 + math.sin(2 * math.pi * index / FPS))


def encoded(path: Path, seconds: float, block_left: Callable[[int], float | None]) -> Path:
    """The still view with a bright car-sized block whose left edge (0..1 of the width) is
    ``block_left(index)`` (None: no block), encoded as the simulator encodes its clips."""
    geometry = SceneGeometry(STILL.width, STILL.height, round(seconds * FPS), FPS, seconds)
    codec, options = _encoder_options(STILL)
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=FPS, options=options)
        assert isinstance(stream, VideoStream)
        stream.width, stream.height, stream.pix_fmt = STILL.width, STILL.height, "yuv420p"
        h, w = STILL.height, STILL.width
        for index, (yuv, _) in enumerate(pictures("intruder", geometry)):
            left = block_left(index)
            if left is not None:
                yuv[int(0.55 * h) : int(0.8 * h), int(left * w) : int((left + 0.2) * w)] = 200
            frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            frame.pts, frame.time_base = index, Fraction(1, FPS)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def packets(path: Path) -> tuple[StreamInfo, list[tuple[bytes, int | None, int | None, bool]]]:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        info = stream_info(video)
        found = [(bytes(p), p.pts, p.dts, p.is_keyframe) for p in container.demux(video) if p.size]
    return info, found


def test_a_reconnect_that_changes_the_picture_raises_nothing(
    engine: Engine, tmp_path: Path
) -> None:
    config = AppConfig.model_validate(
        {
            "platforms": [{"id": "town", "name": "Town"}],
            "cameras": [
                {"id": camera, "name": camera, "platform": "town", "url": "rtsp://127.0.0.1:9/x"}
                for camera in ("reconnect", "same")
            ],
        }
    )
    catalog = Catalog.from_config(config)
    bus = EventBus(EventStore(engine), catalog, config.events, AuditLog(engine))
    zones = ZoneMotionConfig(hold_s=1.0, clear_s=2.0, cooldown_s=5.0)
    still_info, still = packets(ensure_clip(STILL, CLIP_CACHE))
    parked_info, after = packets(parked(tmp_path / "parked.mp4", 0.0))
    # The same pictures on one connection: one clip in which the car appears.
    same_info, same = packets(parked(tmp_path / "appears.mp4", STILL.seconds))
    assert len(same) == len(still) + len(after)
    streams = {name: Stream(name, ring_seconds=4, queue_packets=200) for name in catalog.cameras}
    watches = {
        name: CameraWatch(
            camera, streams[name], [replace(ZONE, camera_id=name)], zones, bus, offline_after_s=15
        )
        for name, camera in catalog.cameras.items()
    }
    for watch in watches.values():
        watch.start()
    try:
        # Paced as a camera sends: the watcher reads the packets' arrival times.
        started = time.monotonic()
        timeline = [(still_info, p) for p in still] + [(parked_info, p) for p in after]
        for index, (info, (data, pts, dts, keyframe)) in enumerate(timeline):
            time.sleep(max(0.0, started + index / FPS - time.monotonic()))
            streams["reconnect"].deliver(data, pts, dts, keyframe, info)
            streams["same"].deliver(*same[index], same_info)
        wait_until(lambda: all(w.analysed >= 20 for w in watches.values()), 5, "pictures analysed")
    finally:
        for watch in watches.values():
            watch.stop()
        for watch in watches.values():
            watch.join(5)
    raised = bus.search(EventFilter(types=[EventType.ZONE_MOTION]))
    by_camera = {event.camera_id: event for event in raised.events}
    assert set(by_camera) == {"same"}, by_camera  # the control: the change itself is motion
    alarm = by_camera["same"]
    assert alarm.key == motion_key("same", ZONE.id) and alarm.zone_id == ZONE.id
    assert alarm.severity == "alarm" and alarm.has_snapshot
    picture = bus.snapshot(alarm.id)
    assert picture is not None and picture.jpeg[:2] == b"\xff\xd8" and picture.width == 640
    assert alarm.ended_at is not None  # the watcher stopped: nobody watches the zone now
    assert alarm.detail["zone"] == "path" and alarm.detail["share"] > 0.3


def test_a_short_outage_keeps_one_alarm_and_a_long_one_ends_it(
    engine: Engine, tmp_path: Path
) -> None:
    """Three cameras see someone pacing in the zone (an alarm each); then their packets
    stop. "short" and "quiet" come back on a new connection within offline_after_s, "short"
    still with someone pacing, "quiet" with nobody; "long" stays silent."""
    cameras = ("short", "quiet", "long")
    config = AppConfig.model_validate(
        {
            "platforms": [{"id": "town", "name": "Town"}],
            "cameras": [
                {"id": camera, "name": camera, "platform": "town", "url": "rtsp://127.0.0.1:9/x"}
                for camera in cameras
            ],
        }
    )
    catalog = Catalog.from_config(config)
    bus = EventBus(EventStore(engine), catalog, config.events, AuditLog(engine))
    # The outage (3 s) is longer than clear_s: before the fix, silence ended the alarms.
    zones = ZoneMotionConfig(hold_s=1.0, clear_s=2.0, cooldown_s=30.0)
    offline_after_s = 5.0
    first_s, outage_s, second_s = 4.0, 3.0, 5.5
    first_info, moving = packets(encoded(tmp_path / "pacing.mp4", second_s, pacing))
    still_info, still = packets(encoded(tmp_path / "still.mp4", second_s, lambda _: None))
    # A reconnect: the same camera, a new connection (a new StreamInfo, timestamps anew).
    again = replace(first_info)
    assert again is not first_info
    plan = {  # camera -> [(seconds into the test, info, packet)]
        "short": [(i / FPS, first_info, p) for i, p in enumerate(moving[: int(first_s * FPS)])]
        + [(first_s + outage_s + i / FPS, again, p) for i, p in enumerate(moving)],
        "quiet": [(i / FPS, first_info, p) for i, p in enumerate(moving[: int(first_s * FPS)])]
        + [(first_s + outage_s + i / FPS, still_info, p) for i, p in enumerate(still)],
        "long": [(i / FPS, first_info, p) for i, p in enumerate(moving[: int(first_s * FPS)])],
    }
    timeline = sorted(
        (
            (at, camera, info, packet)
            for camera, items in plan.items()
            for at, info, packet in items
        ),
        key=lambda item: item[0],
    )
    streams = {name: Stream(name, ring_seconds=4, queue_packets=200) for name in cameras}
    watches = {
        name: CameraWatch(
            catalog.cameras[name],
            streams[name],
            [replace(ZONE, camera_id=name)],
            zones,
            bus,
            offline_after_s,
        )
        for name in cameras
    }

    def alarms(camera: str) -> list[EventRecord]:
        found = bus.search(EventFilter(types=[EventType.ZONE_MOTION], camera_id=camera))
        return list(found.events)

    for watch in watches.values():
        watch.start()
    try:
        started = time.monotonic()
        wall_started = time.time()
        for at, camera, info, (data, pts, dts, keyframe) in timeline:
            time.sleep(max(0.0, started + at - time.monotonic()))
            streams[camera].deliver(data, pts, dts, keyframe, info)
        silent_at = wall_started + first_s  # when the packets stopped
        back_at = silent_at + outage_s  # and came back
        # "short": one alarm, raised before the outage, going on after it.
        going_on = wait_until(
            lambda: [e for e in alarms("short") if e.last_seen_at > back_at + 1], 5, "last_seen"
        )
        assert len(alarms("short")) == 1, alarms("short")
        assert going_on[0].started_at < silent_at and going_on[0].ended_at is None
        # "quiet": one alarm, ended clear_s after its zone was seen again without motion,
        # not in the outage (the re-warm takes 2 s of pictures).
        quiet = wait_until(
            lambda: [e for e in alarms("quiet") if e.ended_at is not None], 5, "quiet ended"
        )
        assert len(alarms("quiet")) == 1 and quiet[0].started_at < silent_at
        assert quiet[0].ended_at is not None and quiet[0].ended_at > back_at + zones.clear_s
        # "long": silent offline_after_s, so its alarm ended then, in the outage.
        ended = wait_until(
            lambda: [e for e in alarms("long") if e.ended_at is not None], 5, "long ended"
        )
        assert len(alarms("long")) == 1 and ended[0].started_at < silent_at
        assert ended[0].ended_at is not None
        assert (
            silent_at + offline_after_s - 0.2
            < ended[0].ended_at
            < silent_at + offline_after_s + 1.5
        )
        assert alarms("short")[0].ended_at is None  # still: no outage end, no clear_s end
    finally:
        for watch in watches.values():
            watch.stop()
        for watch in watches.values():
            watch.join(5)
