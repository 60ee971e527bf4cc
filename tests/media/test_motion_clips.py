"""Zone alarms on encoded clips, decoded offline at the detector's rate (faster than real
time) with the default settings of ``events.zones``: the simulator's intruder scene raises
one alarm per walk-in in the zone it walks into and none elsewhere; real footage
(../shared/footage: cars in a car park, people walking past a table) raises alarms only
where a zone covers where they move."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from surveillance.config.models import ZoneMotionConfig
from surveillance.media.motion import MotionDetector, luma_small
from surveillance.simulator.clips import ClipSpec, ensure_clip
from surveillance.zones.hold import Change, MotionHold
from tests.conftest import CLIP_CACHE, needs_file

FOOTAGE = Path(__file__).resolve().parents[3] / "shared" / "footage"
Outline = list[tuple[float, float]]


def box(x0: float, y0: float, x1: float, y1: float) -> Outline:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def pictures(path: Path, loops: int = 1) -> list[tuple[float, np.ndarray]]:
    """The clip's pictures the detector sees (``zones.fps`` a second, ``zones.width`` wide,
    grey) with their times, played ``loops`` times in a row as the simulator loops it."""
    config = ZoneMotionConfig()
    once: list[tuple[float, np.ndarray]] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or 25)
        next_at = 0.0
        for index, frame in enumerate(container.decode(stream)):
            if index / fps >= next_at:
                next_at += 1 / config.fps
                once.append((index / fps, luma_small(frame, config.width)))
    length = (index + 1) / fps
    return [(loop * length + at, grey) for loop in range(loops) for at, grey in once]


def alarms(
    seen: list[tuple[float, np.ndarray]], zones: dict[str, Outline], sensitivity: int
) -> dict[str, int]:
    """How many alarms each zone raises over these pictures."""
    config = ZoneMotionConfig()
    holds = {name: MotionHold(config.hold_s, config.clear_s, config.cooldown_s) for name in zones}
    raised = dict.fromkeys(zones, 0)
    names = dict(enumerate(zones))
    height, width = seen[0][1].shape
    detector = MotionDetector(
        width, height, {i: (zones[name], sensitivity) for i, name in names.items()},
        warm_pictures=round(2 * config.fps),
    )  # fmt: skip
    for at, grey in seen:
        for zone_id, motion in detector.update(grey).items():
            if holds[names[zone_id]].update(motion.moving, at) is Change.RAISE:
                raised[names[zone_id]] += 1
    return raised


INTRUDER = ClipSpec(
    codec="h264", profile="main", width=640, height=360, fps=25, bitrate_kbps=800,
    gop_s=1.0, seconds=24.0, scene="intruder", event_at_s=6.0,
)  # fmt: skip


def test_the_intruder_raises_one_alarm_per_walk_in_its_zone_only() -> None:
    seen = pictures(ensure_clip(INTRUDER, CLIP_CACHE), loops=3)
    zones = {
        "where it walks": box(0.55, 0.45, 0.85, 0.85),
        "left": box(0.05, 0.3, 0.45, 0.9),
        "above": box(0.55, 0.05, 0.95, 0.4),
    }
    # Three times round the loop: walk-ins at 6, 30 and 54 s. The first alarm ends 10 s
    # (clear_s) after the intruder left, ~22 s; the zone then rests 30 s (cooldown_s), so
    # the second walk-in raises nothing and the third a new alarm.
    for sensitivity in (50, 100):
        raised = alarms(seen, zones, sensitivity)
        assert raised == {"where it walks": 2, "left": 0, "above": 0}, sensitivity


@pytest.mark.parametrize(
    ("clip", "moving", "still"),
    [
        # Cars drive through the left two thirds; nothing crosses the right quarter.
        ("car-detection.mp4", box(0.2, 0.1, 0.55, 0.95), box(0.72, 0.1, 0.95, 0.9)),
        # People walk behind the table in the middle; the left wall and window stay still.
        ("one-by-one-person-detection.mp4", box(0.5, 0.15, 0.68, 0.85), box(0.03, 0.05, 0.3, 0.9)),
    ],
)
def test_footage_alarms_only_where_things_move(clip: str, moving: Outline, still: Outline) -> None:
    path = needs_file(FOOTAGE / clip, "recorded footage (../shared/footage, see its README)")
    seen = pictures(path)
    for sensitivity in (50, 90):
        raised = alarms(seen, {"moving": moving, "still": still}, sensitivity)
        assert raised["moving"] >= 1, (clip, sensitivity, raised)
        assert raised["still"] == 0, (clip, sensitivity, raised)
