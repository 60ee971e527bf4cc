"""Picture checks on made-up small pictures: each figure moves the way its check needs, and the
reference match forgives light and a small shake but not another view."""

from __future__ import annotations

import cv2
import numpy as np

from surveillance.media.picture_checks import (
    Check,
    SmallPicture,
    Thresholds,
    analysis_size,
    failing,
    measure,
    similarity,
)

W, H = 160, 90


def _textured(seed: int = 1) -> np.ndarray:
    # Blobs of a few pixels (a scene's objects) and fine grain, different for every seed.
    rng = np.random.default_rng(seed)
    blobs = cv2.GaussianBlur(rng.normal(0, 1, size=(H, W)).astype(np.float32), (0, 0), 2.5)
    grain = rng.normal(0, 6, size=(H, W))
    return np.asarray(np.clip(120 + 50 * blobs / blobs.std() + grain, 0, 255), dtype=np.float32)


def _picture(luma: np.ndarray, u: float = 128, v: float = 128) -> SmallPicture:
    return SmallPicture(
        luma.astype(np.float32),
        np.full((H // 2, W // 2), u, np.float32),
        np.full((H // 2, W // 2), v, np.float32),
    )


def _verdict(picture: SmallPicture, previous: SmallPicture | None = None) -> frozenset[Check]:
    return failing(measure(picture, previous, None), Thresholds())


def test_each_check_fails_on_its_fault_and_only_the_most_specific_one() -> None:
    scene = _picture(_textured())
    assert _verdict(scene) == frozenset()
    assert _verdict(_picture(np.full((H, W), 3.0))) == {Check.DARK}  # not also covered, frozen
    assert _verdict(_picture(np.full((H, W), 250.0))) == {Check.BRIGHT}
    flat = _picture(45 + np.random.default_rng(2).normal(0, 2, (H, W)))
    assert _verdict(flat) == {Check.COVERED}
    assert _verdict(_picture(flat.luma, u=90, v=200)) == {Check.ONE_COLOUR}
    # A grey picture, however uniform its colour, is not "one colour".
    figures = measure(scene, None, None)
    assert figures.colour_share == 1.0 and figures.saturation == 0.0
    blurred = _picture(cv2.GaussianBlur(_textured(), (0, 0), 4.0))
    assert measure(blurred, None, None).contrast > Thresholds().min_contrast
    assert _verdict(blurred) == {Check.DEFOCUS}
    # Frozen: no change since the previous picture; the same scene with its noise redrawn and
    # one block changed is not frozen.
    assert _verdict(scene, previous=scene) == {Check.FROZEN}
    # A held picture re-coded by an encoder at a constant bit rate: fine noise of a few steps
    # all over it (2.4 steps mean, above frozen_diff unblurred); still frozen.
    recoded = scene.luma + np.random.default_rng(3).normal(0, 3, (H, W)).astype(np.float32)
    assert _verdict(_picture(recoded), previous=scene) == {Check.FROZEN}
    moved_block = scene.luma.copy()
    moved_block[30:50, 60:80] += 60
    assert _verdict(_picture(moved_block), previous=scene) == frozenset()


def test_a_camera_flagged_frozen_passes_again_only_on_a_clearly_larger_change() -> None:
    scene = _picture(_textured())
    t = Thresholds()
    # Evenly brighter by a step just over frozen_diff: a change of exactly that much.
    just_over = measure(_picture(scene.luma + t.frozen_diff * 1.05), scene, None)
    assert failing(just_over, t) == frozenset()
    assert failing(just_over, t, frozen_flagged=True) == {Check.FROZEN}
    clearly = measure(_picture(scene.luma + t.frozen_diff * 2.5), scene, None)
    assert failing(clearly, t, frozen_flagged=True) == frozenset()


def test_the_reference_match_forgives_light_and_a_shake_but_not_another_view() -> None:
    reference = _textured()
    assert similarity(reference, reference) > 0.99
    darker = (reference * 0.5 + 10).astype(np.float32)  # evening light
    assert similarity(darker, reference) > 0.95
    shaken = np.roll(reference, (3, 5), axis=(0, 1))  # the pole sways a few pixels
    assert similarity(shaken, reference) > 0.8
    elsewhere = np.roll(_textured(seed=7), (20, 50), axis=(0, 1))
    assert similarity(elsewhere, reference) < 0.3
    moved = measure(_picture(elsewhere), None, _picture(reference))
    assert failing(moved, Thresholds()) == {Check.MOVED}
    # A reference stored at another size (the camera's resolution changed) still compares.
    small_reference = SmallPicture.from_luma(reference[::2, ::2].copy())
    same = measure(_picture(reference), None, small_reference)
    assert same.similarity is not None and same.similarity > 0.6


def test_the_analysis_size_keeps_the_aspect_in_even_pixels() -> None:
    assert analysis_size(1920, 1080) == (160, 90)
    assert analysis_size(768, 432) == (160, 90)
    assert analysis_size(704, 576) == (160, 130)
    assert analysis_size(100, 60) == (100, 60)  # never scaled up
    planar = np.zeros((90 * 3 // 2, 160), np.uint8)
    planar[:90] = 235  # limited-range white
    picture = SmallPicture.from_yuv420(planar)
    assert picture.size == (160, 90) and float(picture.luma.mean()) == 255.0
