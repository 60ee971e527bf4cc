"""Diagnosis offline, on files and their own clock (tests/services/quality_feed.py): minutes of
real footage and of the generated moving scenes raise nothing at the default settings, and
each fault scene raises its own event, and only it, at short settings."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from surveillance.config.models import DiagnosisConfig
from surveillance.media.packet_stats import PacketFigures
from surveillance.media.picture_checks import SmallPicture, Thresholds
from surveillance.services.camera_quality import (
    CameraQuality,
    Change,
    DiagnosisSettings,
    QualityCheck,
)
from surveillance.services.conditions import Timing, Transition
from surveillance.services.diagnosis import camera_settings
from surveillance.simulator import ClipSpec, ensure_clip
from surveillance.simulator.demo import FROZEN_SUB
from tests.conftest import (
    BASELINE,
    CLIP_CACHE,
    FAULT_AT_S,
    H265,
    HIGH_BFRAMES,
    SMALL_H264,
    TURNED_AT_S,
    fault_mounts,
    needs_file,
)
from tests.services.quality_feed import feed

FOOTAGE = Path(__file__).resolve().parents[3] / "shared" / "footage"
MINUTES = 6 * 60.0  # of media time for each file: every default hold passes many times over
DEFAULTS = camera_settings(DiagnosisConfig(), ())
# The loop shows the ordinary picture for FAULT_AT_S (3 s) only: clear_s must fit in it.
SHORT = DiagnosisSettings(interval_s=1.0, settle_s=1.0, timing=Timing(hold_s=2.0, clear_s=1.0))
EXPECTED = {
    "frozen": QualityCheck.FROZEN,
    "black": QualityCheck.DARK,
    "covered": QualityCheck.COVERED,
    "defocus": QualityCheck.DEFOCUS,
    "sprayed": QualityCheck.ONE_COLOUR,
    "turned": QualityCheck.MOVED,
}


@pytest.mark.parametrize("name", ["car-detection.mp4", "one-by-one-person-detection.mp4"])
def test_real_footage_raises_nothing_over_minutes(name: str) -> None:
    path = needs_file(FOOTAGE / name, "recorded footage (../shared/footage, see its README)")
    # A reference set once the camera settled: a fixed camera with people and cars passing.
    result = feed(path, DEFAULTS, MINUTES, reference_at_s=DEFAULTS.settle_s + 1)
    assert result.media_s >= MINUTES and result.pictures >= MINUTES / DEFAULTS.interval_s * 0.8
    assert result.changes == []


def test_generated_moving_scenes_raise_nothing_over_minutes() -> None:
    for spec in (SMALL_H264, BASELINE, HIGH_BFRAMES, H265):
        result = feed(ensure_clip(spec, CLIP_CACHE), DEFAULTS, MINUTES)
        assert result.pictures >= MINUTES / DEFAULTS.interval_s * 0.8, spec
        assert result.changes == [], spec


def test_each_fault_scene_raises_its_own_event_and_ends_it() -> None:
    for mount in fault_mounts():
        clip = mount.clip
        assert isinstance(clip, ClipSpec)
        scene = clip.scene
        fault_at = TURNED_AT_S if scene == "turned" else FAULT_AT_S
        # One loop and the ordinary picture that starts the next (the fault, until the clip
        # ends, then FAULT_AT_S seconds of the ordinary picture again).
        result = feed(
            ensure_clip(clip, CLIP_CACHE),
            SHORT,
            clip.seconds + FAULT_AT_S,
            reference_at_s=2.0 if scene == "turned" else None,
        )
        seen = [(at, change.check, change.transition) for at, change in result.changes]
        assert [(c, t) for _, c, t in seen] == [
            (EXPECTED[scene], Transition.RAISE),
            (EXPECTED[scene], Transition.END),
        ], scene
        (raised_at, _, _), (ended_at, _, _) = seen
        # Raised once it held (plus a sample or two), ended once the loop's clear picture held.
        assert fault_at + SHORT.timing.hold_s <= raised_at <= fault_at + 5.0, scene
        assert clip.seconds + SHORT.timing.clear_s <= ended_at <= clip.seconds + FAULT_AT_S, scene


def test_the_demos_frozen_camera_is_flagged_though_its_encoder_keeps_refining_the_picture() -> None:
    # The demo's camera 6 (sub-stream, the one diagnosed): x264 at 512 kbit/s with a 2 s GOP
    # spends its bits refining the held picture, so keyframes differ a little and P-frames
    # are not tiny; a camera whose sensor hung under a CBR encoder looks the same.
    result = feed(ensure_clip(FROZEN_SUB, CLIP_CACHE), DEFAULTS, 90.0)
    seen = [(at, change.check, change.transition) for at, change in result.changes]
    assert [(c, t) for _, c, t in seen] == [(QualityCheck.FROZEN, Transition.RAISE)], seen
    (detected_at, change) = result.changes[0]
    # Frozen from the first picture: the condition begins with the first verdict after the
    # settle, within 30 s of connecting, and is raised once it held.
    assert change.at <= 30.0, change.at
    assert detected_at <= DEFAULTS.settle_s + DEFAULTS.timing.hold_s + 2 * DEFAULTS.interval_s


def test_nothing_is_judged_while_a_camera_settles_after_connecting() -> None:
    black = next(m.clip for m in fault_mounts() if m.path == "black")
    assert isinstance(black, ClipSpec)
    settle_s = FAULT_AT_S + 5.0  # the fault is on screen for 5 s of the settle already
    settling = dataclasses.replace(SHORT, settle_s=settle_s)
    result = feed(ensure_clip(black, CLIP_CACHE), settling, black.seconds)
    (at, change), *rest = result.changes
    assert change.check is QualityCheck.DARK and not rest
    # The first verdict after the settle starts the hold: not a moment earlier.
    assert settle_s + SHORT.timing.hold_s <= at <= settle_s + SHORT.timing.hold_s + 2.0


def test_a_cameras_tags_override_field_by_field_the_first_tag_winning() -> None:
    config = DiagnosisConfig.model_validate(
        {
            "hold_s": 15,
            "tags": {
                "forest-fire": {"hold_s": 30, "thresholds": {"min_contrast": 2.0}},
                "night": {"hold_s": 60, "clear_s": 5, "thresholds": {"dark_luma": 4}},
                "parked": {"enabled": False},
            },
        }
    )
    settings = camera_settings(config, ("traffic", "forest-fire", "night"))
    assert settings.timing == Timing(hold_s=30, clear_s=5) and settings.settle_s == 20
    assert settings.thresholds.min_contrast == 2.0 and settings.thresholds.dark_luma == 4
    assert settings.thresholds.frozen_diff == DEFAULTS.thresholds.frozen_diff
    assert camera_settings(config, ("night", "forest-fire")).timing.hold_s == 60
    assert camera_settings(config, ("parked",)).enabled is False
    assert camera_settings(DiagnosisConfig(enabled=False), ()).enabled is False
    # The defaults of the config are the checks' own (media/picture_checks.py).
    assert DEFAULTS.thresholds == Thresholds()
    # A tag that tolerates little contrast (a misty valley) keeps the covered scene quiet.
    misty = camera_settings(
        DiagnosisConfig.model_validate({"tags": {"mist": {"thresholds": {"min_contrast": 2}}}}),
        ("mist",),
    )
    covered = next(m.clip for m in fault_mounts() if m.path == "covered")
    assert isinstance(covered, ClipSpec)
    quiet = dataclasses.replace(misty, interval_s=1.0, settle_s=1.0, timing=SHORT.timing)
    result = feed(ensure_clip(covered, CLIP_CACHE), quiet, covered.seconds)
    assert result.pictures > 5 and result.changes == []


def test_the_demos_frozen_camera_stays_flagged_without_a_gap_for_minutes() -> None:
    # Flagged once, never ended: one warning for as long as the picture is frozen.
    result = feed(ensure_clip(FROZEN_SUB, CLIP_CACHE), DEFAULTS, 8 * 60.0)
    seen = [(change.check, change.transition) for _, change in result.changes]
    assert seen == [(QualityCheck.FROZEN, Transition.RAISE)], seen
    assert (
        result.changes[0][0] <= DEFAULTS.settle_s + DEFAULTS.timing.hold_s + 2 * DEFAULTS.interval_s
    )


def _held_picture(offset: float) -> SmallPicture:
    # A textured picture, evenly offset: the change figure between two of them is exactly the
    # difference of their offsets (a CBR encoder's refinement of a held picture, in size).
    rng = np.random.default_rng(7)
    blobs = cv2.GaussianBlur(rng.normal(0, 1, size=(90, 160)).astype(np.float32), (0, 0), 2.5)
    return SmallPicture.from_luma(np.asarray(120 + 40 * blobs / blobs.std() + offset, np.float32))


def _run(quality: CameraQuality, offsets: list[float], start: float) -> list[Change]:
    window = PacketFigures(None, None, None, None, None, 0)
    changes: list[Change] = []
    for i, offset in enumerate(offsets):
        at = start + i * DEFAULTS.interval_s
        changes += quality.judge(at, window, 1, _held_picture(offset), None)
    return changes


def test_a_frozen_flag_is_not_ended_by_a_change_hovering_at_the_threshold() -> None:
    # The demo's camera live: change 0.79-0.84, then 1.58 for a minute, by turns (review13b N1).
    quality = CameraQuality("held", dataclasses.replace(DEFAULTS, settle_s=0.0))
    quality.packet(1000, True, 0.0, 0.0, new_connection=True)
    frozen = [0.0, 0.8] * 6  # change 0.8 at every sample
    raised = _run(quality, frozen, 0.0)
    assert [(c.check, c.transition) for c in raised] == [(QualityCheck.FROZEN, Transition.RAISE)]
    hovering = list(np.cumsum([1.58] * 12 + [0.8] * 12 + [1.58] * 12))  # 3 minutes
    start = len(frozen) * DEFAULTS.interval_s
    assert _run(quality, [0.8 + o for o in hovering], start) == []
    assert quality.active() == {QualityCheck.FROZEN}
    # Motion (a change well above the threshold) still ends it once clear_s has passed.
    moving = list(np.cumsum([5.0] * 8))
    ended = _run(quality, moving, start + len(hovering) * DEFAULTS.interval_s)
    assert [(c.check, c.transition) for c in ended] == [(QualityCheck.FROZEN, Transition.END)]
