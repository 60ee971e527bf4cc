"""Whether a simulated PTZ camera's picture moved: how different two decoded pictures are.

For tests and benchmarks reading a PTZ mount (``MountSpec.ptz_scene``): a client decodes
pictures and calls :func:`difference` on each against one from before a command; the view
moved once it exceeds :data:`MOVED_THRESHOLD`.

Both pictures are made grey and shrunk to :data:`COMPARE_SIZE` before the mean absolute
difference is taken: shrinking averages away the encoder's noise (and makes pictures of
different sizes comparable), while the scene's large features still move whole pixels.
The bottom-right corner (:data:`LIVE_CORNER_FRACTION`) is left out: the simulator lays a
small moving ball there (gst_ptz_mount's live mark, so that the picture is live as a real
camera's is), which changes whatever the view.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

COMPARE_SIZE = (160, 90)  # (width, height) both pictures are shrunk to
# The square at the bottom-right corner left out of the comparison, as a fraction of the
# picture's height: gst_ptz_mount's live mark is height/6 with a height/36 margin (0.19).
LIVE_CORNER_FRACTION = 0.22

# Mean absolute luma difference (0..255) above which two pictures show different views.
# Measured on the simulator's mounts (openh264enc, 640x360 and 320x180, 10 fps, the live
# mark in the corner left out): two pictures of one still view differ by at most ~0.3
# (the encoder's keyframe versus its P-frames); a pan step of 0.1 at the widest view
# differs by ~20, at zoom 1 by more. The threshold sits far from both.
MOVED_THRESHOLD = 8.0

Picture = npt.NDArray[np.uint8]  # H x W grey, or H x W x 3 BGR (as PyAV's "bgr24")


def difference(a: Picture, b: Picture) -> float:
    """Mean absolute difference of the two pictures' shrunk grey versions, 0..255."""
    small_a, small_b = _small_grey(a), _small_grey(b)
    diff = np.abs(small_a.astype(np.int16) - small_b.astype(np.int16))
    return float(np.mean(diff[COMPARED]))


def moved(a: Picture, b: Picture) -> bool:
    """Whether the two pictures show different views."""
    return difference(a, b) > MOVED_THRESHOLD


def _compared() -> npt.NDArray[np.bool_]:
    """Which pixels of the shrunk pictures are compared: all but the live corner."""
    width, height = COMPARE_SIZE
    side = round(height * LIVE_CORNER_FRACTION)
    mask = np.ones((height, width), dtype=bool)
    mask[height - side :, width - side :] = False
    return mask


COMPARED = _compared()


def _small_grey(picture: Picture) -> Picture:
    if picture.ndim == 3:
        picture = np.asarray(cv2.cvtColor(picture, cv2.COLOR_BGR2GRAY), np.uint8)
    elif picture.ndim != 2:
        raise ValueError(f"a picture is H x W or H x W x 3, not {picture.shape}")
    return np.asarray(cv2.resize(picture, COMPARE_SIZE, interpolation=cv2.INTER_AREA), np.uint8)
