"""The zone motion detector over small grey pictures: noise, light and speckle are not
motion; a person-sized change inside a zone is, and only in that zone."""

from __future__ import annotations

import numpy as np
import pytest

from surveillance.media.motion import STILL_PICTURES, MotionDetector, Sensitivity, zone_mask

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


def with_person(base: np.ndarray, left: int) -> np.ndarray:
    """The scene with a bright person-sized block whose left edge is at ``left`` (px): in
    the right zone while ``left`` is 90..110."""
    picture = base.copy()
    picture[45:75, left : left + 25] = 230
    return picture


# How long a ghost (or a change that stopped) may read as motion: it must hold still
# STILL_PICTURES, then 255 luma steps fade below the most sensitive floor (10) in ~40.
GHOST_PICTURES = STILL_PICTURES + 45


@pytest.mark.parametrize("sensitivity", [50, 100])
def test_a_ghost_of_someone_there_while_warming_fades_within_seconds(sensitivity: int) -> None:
    # Someone stood in the zone while the background was built (start-up, a reconnect) and
    # walks off: where they stood now differs from the background but holds still. Learnt
    # at the rate for a passing change it read as motion for ~650 pictures (over 2 minutes
    # at 5 fps, holding the zone's alarm); it must fade like scenery within seconds.
    rng = np.random.default_rng(9)
    base = scene(rng)
    detector = MotionDetector(W, H, {1: (RIGHT, sensitivity)}, warm_pictures=5)
    for _ in range(5):
        detector.update(noisy(with_person(base, 100), rng))
    assert detector.warm
    verdicts = [detector.update(noisy(base, rng))[1].moving for _ in range(GHOST_PICTURES + 50)]
    assert verdicts[0]  # at first the hole is motion: someone did just leave
    assert not any(verdicts[GHOST_PICTURES:]), sum(verdicts)


def test_someone_moving_or_shuffling_on_the_spot_stays_motion_and_leaves_no_lasting_ghost() -> None:
    rng = np.random.default_rng(10)
    base = scene(rng)
    detector = MotionDetector(W, H, {1: (RIGHT, 50), 2: (LEFT, 100)}, warm_pictures=5)
    for _ in range(10):
        detector.update(noisy(base, rng))
    # Pacing to and fro across the zone for a minute at 5 fps: never absorbed.
    lefts = [90 + abs((i * 3) % 40 - 20) for i in range(300)]
    for left in lefts:
        result = detector.update(noisy(with_person(base, left), rng))
        assert result[1].moving and not result[2].moving, left
    # Standing, shuffling a pixel or two, for 20 s: the still inside of the block becomes
    # background after STILL_PICTURES, its moving edges stay motion.
    for i in range(100):
        result = detector.update(noisy(with_person(base, 100 + (i % 3)), rng))
        assert result[1].moving, i
    # Gone: the ghost of the inside learnt meanwhile fades within the same bound.
    verdicts = [detector.update(noisy(base, rng))[1].moving for _ in range(GHOST_PICTURES + 50)]
    assert not any(verdicts[GHOST_PICTURES:])
