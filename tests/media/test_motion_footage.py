"""Real footage (../shared/footage: cars in a car park, people walking past a table) raises
zone alarms only where a zone covers where they move: decoded offline at the detector's
rate, faster than real time, with the default settings of ``events.zones``."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from surveillance.config.models import ZoneMotionConfig
from surveillance.media.motion import MotionDetector, luma_small
from surveillance.zones.hold import Change, MotionHold
from tests.conftest import needs_file

FOOTAGE = Path(__file__).resolve().parents[3] / "shared" / "footage"
Outline = list[tuple[float, float]]


def box(x0: float, y0: float, x1: float, y1: float) -> Outline:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def alarms(path: Path, zones: dict[str, Outline], sensitivity: int) -> dict[str, int]:
    """How many alarms each zone raises over the clip, played once at its own clock."""
    config = ZoneMotionConfig()
    holds = {name: MotionHold(config.hold_s, config.clear_s, config.cooldown_s) for name in zones}
    raised = dict.fromkeys(zones, 0)
    detector: MotionDetector | None = None
    ids = {index: name for index, name in enumerate(zones)}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or 25)
        next_at = 0.0
        for index, frame in enumerate(container.decode(stream)):
            at = index / fps
            if at < next_at:
                continue
            next_at += 1 / config.fps
            grey = luma_small(frame, config.width)
            if detector is None:
                detector = MotionDetector(
                    grey.shape[1], grey.shape[0],
                    {i: (zones[name], sensitivity) for i, name in ids.items()},
                    warm_pictures=round(2 * config.fps),
                )  # fmt: skip
            for zone_id, motion in detector.update(grey).items():
                if holds[ids[zone_id]].update(motion.moving, at) is Change.RAISE:
                    raised[ids[zone_id]] += 1
    return raised


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
    for sensitivity in (50, 90):
        raised = alarms(path, {"moving": moving, "still": still}, sensitivity)
        assert raised["moving"] >= 1, (clip, sensitivity, raised)
        assert raised["still"] == 0, (clip, sensitivity, raised)
