"""The zone motion detector over small grey pictures: noise, light and speckle are not
motion; a person-sized change inside a zone is, and only in that zone."""

from __future__ import annotations

import numpy as np
import pytest

from surveillance.media.motion import MotionDetector, Sensitivity, zone_mask

W, H = 160, 90
RIGHT = [(0.55, 0.45), (0.85, 0.45), (0.85, 0.85), (0.55, 0.85)]
LEFT = [(0.05, 0.3), (0.45, 0.3), (0.45, 0.9), (0.05, 0.9)]


def scene(rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    return np.clip(110 + 40 * np.sin(xx / 7) * np.cos(yy / 5), 0, 255).astype(np.float32)


def noisy(base: np.ndarray, rng: np.random.Generator, offset: float = 0.0) -> np.ndarray:
    return np.clip(base + offset + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)


def test_masks_cover_their_polygon() -> None:
    mask = zone_mask(RIGHT, W, H)
    assert mask.shape == (H, W)
    assert abs(mask.mean() - 0.3 * 0.4) < 0.02
    assert mask[int(0.6 * H), int(0.7 * W)] and not mask[int(0.6 * H), int(0.3 * W)]


def test_sensitivity_scales_every_limit_and_is_bounded() -> None:
    low, high = Sensitivity.of(1), Sensitivity.of(100)
    assert low.noise_factor > high.noise_factor and low.floor > high.floor
    assert low.min_share > high.min_share and low.min_blob_px > high.min_blob_px
    with pytest.raises(ValueError, match=r"1\.\.100"):
        Sensitivity.of(0)


def test_motion_only_in_the_zone_it_happens_and_not_while_warming() -> None:
    rng = np.random.default_rng(7)
    base = scene(rng)
    detector = MotionDetector(W, H, {1: (RIGHT, 50), 2: (LEFT, 100)}, warm_pictures=5)
    # A block already there while warming up is scenery, not an alarm.
    for _ in range(5):
        assert not any(m.moving for m in detector.update(noisy(base, rng)).values())
    assert detector.warm
    for _ in range(20):  # sensor noise alone, then the light changing everywhere
        assert not any(m.moving for m in detector.update(noisy(base, rng)).values())
    for step in range(10):
        assert not any(m.moving for m in detector.update(noisy(base, rng, 3.0 * step)).values())
    moved = base + 30.0
    moved[45:75, 100:125] = 230  # a person-sized bright block inside the right zone
    result = detector.update(noisy(moved, rng))
    assert result[1].moving and result[1].share > 0.3 and result[1].blob_px > 400
    assert not result[2].moving and result[2].share == 0.0
    # A reconnect starts over: no verdicts until warm again.
    detector.reset()
    assert not detector.warm
    assert not detector.update(noisy(base, rng))[1].moving


def test_a_few_scattered_pixels_are_not_motion_even_at_full_sensitivity() -> None:
    rng = np.random.default_rng(8)
    base = scene(rng)
    detector = MotionDetector(W, H, {1: (RIGHT, 100)}, warm_pictures=3)
    for _ in range(5):
        detector.update(noisy(base, rng))
    speckled = noisy(base, rng)
    ys, xs = rng.integers(41, 76, 12), rng.integers(89, 135, 12)
    speckled[ys, xs] = 255  # single hot pixels: compression sparkle, insects at night
    assert not detector.update(speckled)[1].moving
