"""A camera whose clock jumps or drifts is recorded by arrival: real packets of the simulator
through the recorder's per-camera logic (CameraRecorder) into a real index and real files.

The simulator cannot make its clock jump on demand (it did when a second client joined a
shared mount, not when a test asks), so the jump is imitated: captured packets get their
pts/dts shifted mid-stream, or their arrival delayed, and are offered to a real
subscription. The stream's health is a stand-in that says "online": no ingest runs here.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import av
import pytest

from surveillance import db
from surveillance.config.models import RecordingConfig
from surveillance.media.fanout import Subscription
from surveillance.media.health import StreamHealth, StreamState
from surveillance.media.packets import Packet
from surveillance.media.stream import Stream
from surveillance.recordings.records import SegmentRecord
from surveillance.recordings.store import RecordingStore
from surveillance.recordings.verify import verify_recordings
from surveillance.services.camera_recorder import (
    CLOCK_AHEAD_S,
    CLOSED_CLOCK,
    GAP_HELD_UP,
    GAP_SHUTDOWN,
    MIN_GAP_S,
    RESYNC_S,
    SETTLE_S,
    CameraRecorder,
    wall_time,
)
from surveillance.simulator import Simulator
from tests.media.camera_packets import packets_of

pytestmark = pytest.mark.rtsp

CAMERA = "jumpy"
MOUNTS = ("cam00", "bframes")  # without and with B-frames (dts before pts)
ALL_TIME = (0.0, 1e12)
Scenario = Callable[[list[Packet]], list[Packet]]


def shifted(packets: list[Packet], by: int) -> list[Packet]:
    return [
        dataclasses.replace(
            p,
            pts=None if p.pts is None else p.pts + by,
            dts=None if p.dts is None else p.dts + by,
        )
        for p in packets
    ]


def ticks(packets: list[Packet], seconds: float) -> int:
    return round(seconds / packets[0].info.time_base)


def jump_ahead_then_back(packets: list[Packet]) -> list[Packet]:
    """6 s ahead mid-GOP (no packet lost), later 4 s back: a re-shared media clock."""
    a, b = len(packets) * 2 // 5 + 3, len(packets) * 3 // 4 + 2
    return (
        packets[:a]
        + shifted(packets[a:b], ticks(packets, 6.0))
        + shifted(packets[b:], ticks(packets, 2.0))
    )


def creeping_ahead(packets: list[Packet]) -> list[Packet]:
    """0.25 s ahead every 8 packets: each step too small to tell from lost packets."""
    step = ticks(packets, 0.25)
    return [
        dataclasses.replace(p, pts=p.pts + step * (i // 8), dts=p.dts + step * (i // 8))
        if i >= 10 and p.pts is not None and p.dts is not None
        else p
        for i, p in enumerate(packets)
    ]


def held_up(packets: list[Packet]) -> list[Packet]:
    """From the middle on the packets arrive 5 s late (a hold-up; the clock is right): the
    first half is moved 5 s back, so no arrival lies after the capture."""
    half = len(packets) // 2 + 7  # mid-GOP: at a keyframe it is a plain late rollover
    return [
        dataclasses.replace(p, received_at=p.received_at - 5.0) for p in packets[:half]
    ] + packets[half:]


def record(
    packets: list[Packet], tmp_path: Path, segment_s: float = 2.0
) -> tuple[RecordingStore, Path]:
    engine = db.create_db_engine(f"sqlite:///{tmp_path / 'cases.db'}")
    db.upgrade(engine)
    store = RecordingStore(engine)
    root = tmp_path / "recordings"
    root.mkdir()
    subscription = Subscription(len(packets) + 10, lambda _s: None)
    for packet in packets:
        subscription.offer(packet)
    stream = cast(Stream, SimpleNamespace(health=StreamHealth(StreamState.ONLINE)))
    settings = RecordingConfig(segment_s=segment_s, fragment_s=0.5, min_free_bytes=0)
    recorder = CameraRecorder(CAMERA, "main", stream, subscription, store, root, settings)
    recorder.pump()
    recorder.finish()
    return store, root


def frame_times(path: Path) -> list[float]:
    """Media time of each picture in the file, in display order."""
    with av.open(str(path)) as container:
        return [float(f.time or 0.0) for f in container.decode(container.streams.video[0])]


def check(
    packets: list[Packet],
    store: RecordingStore,
    root: Path,
    *,
    held_up: bool = False,
    creeping: bool = False,
) -> None:
    segments = store.segments(CAMERA, "main", *ALL_TIME)
    arrivals = [wall_time(p.received_at) for p in packets]
    frame_s = 1 / (packets[0].info.average_fps or 25.0)
    slack = 3 * frame_s  # the last frame's own time and a B-frame reorder delay
    assert sum(s.frames for s in segments) == len(packets)  # every packet, in order
    assert max(s.end_at or 0 for s in segments) <= time.time()  # nothing in the future
    first = 0
    for n, segment in enumerate(segments):
        assert segment.end_at is not None
        times = frame_times(root / segment.path)
        assert len(times) == segment.frames
        # The file's own timeline is not stretched by a jump: every picture lies inside
        # the indexed span (give or take the B-frame reorder delay: the picture times are
        # display times), where a reader looks for it. A clock creeping ahead in steps
        # too small to tell from lost packets is cut at the next keyframe once it is
        # CLOCK_AHEAD_S ahead: the end of such a segment is held to arrival, and its last
        # pictures (what it ran ahead) lie past that end.
        beyond = max(times) - (segment.end_at - segment.start_at)
        assert beyond <= (2 * CLOCK_AHEAD_S if creeping else slack), (n, beyond, segment)
        mine = arrivals[first : first + segment.frames]
        first += segment.frames
        # The segment lies where its packets arrived: it starts by its first packet's
        # arrival (a frame later when it came in a burst right behind the segment before;
        # earlier by what a late keyframe or a probe's burst allows) and ends by the
        # arrival of its last.
        early = SETTLE_S if n == 0 else RESYNC_S
        assert mine[0] - early - 1e-3 <= segment.start_at <= mine[0] + slack, (n, segment)
        assert segment.end_at <= mine[-1] + slack, (n, segment.end_at - mine[-1])
        if not held_up:  # packets held up are dated before they arrived, as they should
            assert segment.end_at >= mine[-1] - RESYNC_S, (n, segment.end_at - mine[-1])
    # No overlap; a hole is a gap row with its reason.
    gaps = store.gaps(CAMERA, "main", *ALL_TIME)
    for before, after in itertools.pairwise(segments):
        assert before.end_at is not None and before.end_at <= after.start_at + 1e-6
        if after.start_at - before.end_at >= MIN_GAP_S:
            assert any(
                g.reason == GAP_HELD_UP
                and g.start_at <= before.end_at + 1e-6
                and g.end_at is not None
                and g.end_at >= after.start_at - 1e-6
                for g in gaps
            ), (before, after, gaps)
    assert {g.reason for g in gaps} <= {GAP_SHUTDOWN, GAP_HELD_UP}
    assert verify_recordings(store, root).ok


@pytest.mark.parametrize("mount", MOUNTS)
def test_a_jumping_or_drifting_clock_is_recorded_by_arrival(
    simulator: Simulator, tmp_path: Path, mount: str, caplog: pytest.LogCaptureFixture
) -> None:
    captured = packets_of(simulator, MOUNTS)[mount]
    # Segments of 2 s, GOPs of 1 s at 25 fps: four GOPs for a cut and a rollover to show.
    assert len(captured) >= 4 * 25, f"the capture is too short: {len(captured)} packets"
    # A creeping clock reaches CLOCK_AHEAD_S only in a segment long enough (a rollover
    # dates the next one by arrival anyway): 6 s of its media time last 3.4 s.
    scenarios: list[tuple[str, Scenario, float]] = [
        ("jump", jump_ahead_then_back, 2.0),
        ("creep", creeping_ahead, 6.0),
        ("held", held_up, 2.0),
    ]
    for name, scenario, segment_s in scenarios:
        packets = scenario(captured)
        caplog.clear()
        with caplog.at_level(logging.WARNING, "surveillance.services.camera_recorder"):
            store, root = record(packets, tmp_path / name, segment_s)
        segments: list[SegmentRecord] = store.segments(CAMERA, "main", *ALL_TIME)
        check(packets, store, root, held_up=name == "held", creeping=name == "creep")
        # Said once, naming the camera.
        clock_lines = [
            r for r in caplog.records if "clock" in r.getMessage() or " late" in r.getMessage()
        ]
        assert len(clock_lines) == 1, [r.getMessage() for r in caplog.records]
        assert CAMERA in clock_lines[0].getMessage()
        if name in ("creep", "held"):
            # Too small a step for the writer to take out (creep), or no step at all
            # (held): the recorder dates the next segment by arrival.
            assert any(s.closed_reason == CLOSED_CLOCK for s in segments), (name, len(packets))
        if name == "held":
            assert any(g.reason == GAP_HELD_UP for g in store.gaps(CAMERA, "main", *ALL_TIME))
    # The unshifted packets: no clock line, no clock cut.
    caplog.clear()
    with caplog.at_level(logging.WARNING, "surveillance.services.camera_recorder"):
        store, root = record(captured, tmp_path / "steady")
    check(captured, store, root)
    assert not caplog.records, [r.getMessage() for r in caplog.records]
    assert all(s.closed_reason != CLOSED_CLOCK for s in store.segments(CAMERA, "main", *ALL_TIME))
