"""Motion in zones of a small grey picture: a running background, a noise-robust threshold,
a mask per zone, and the changed share and largest blob inside it.

Pure numpy and OpenCV (already a dependency, for scaling): no decoding, no clock. The
caller feeds pictures at a low rate (a few a second, ~160 px wide); each call answers, per
zone, whether something moved there. What makes it robust:

- Sensor noise: the threshold follows the picture's own noise, estimated each picture as
  the median absolute difference from the background (most of a picture does not move),
  times a factor that shrinks as the sensitivity grows, and never below a floor.
- A global change of light (a cloud, the camera's exposure): the median difference is
  subtracted first, so a picture that got brighter everywhere is not motion.
- Speckle: changed pixels are opened (3x3) and only a blob of a minimum size counts, with
  a minimum changed share of the zone; both shrink as the sensitivity grows.
- Start-up and reconnects: the first ``warm_pictures`` only build the background.

The background learns fast where nothing changed and slowly where something changed and
still moves, so a walker is not absorbed as it walks. A change that has held still for
``STILL_PICTURES`` is learnt as fast as scenery: a parked car, or a "ghost" (the hole left
where someone stood while the background was built, at start-up or after a reconnect, once
they walk off: the picture there is the real scene again, and does not move). Learnt slowly
too, a ghost read as motion for minutes (255 -> 10 luma steps at 0.005 a picture is ~650
pictures) and held its zone's alarm that long after the scene was empty; now it fades within
``STILL_PICTURES`` + ~40 pictures (~11 s at 5 fps), however it came about. Someone who stood
still for seconds leaves a shallower ghost when they go, gone within the same bound.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

U8Array = npt.NDArray[np.uint8]
BoolArray = npt.NDArray[np.bool_]
F32Array = npt.NDArray[np.float32]

LEARN_RATE = 0.08  # of the background per picture where nothing changed (~2.5 s at 5 fps)
LEARN_RATE_CHANGED = 0.005  # where something changed and moves: a walker is not absorbed
# A change that held still (no change from one picture to the next) this many pictures in a
# row (3 s at 5 fps) is learnt at LEARN_RATE: 255 -> 10 luma steps then takes ~40 pictures.
# Not at once: someone standing a few seconds (the plain inside of a coat holds still while
# its edges move) is not absorbed, and leaves no ghost when they walk on.
STILL_PICTURES = 15
NOISE_TO_SIGMA = 1.4826  # median absolute deviation -> standard deviation (normal noise)
REFERENCE_AREA = 160 * 90  # blob sizes below are for this many pixels, scaled to the picture
_OPEN_KERNEL = np.ones((3, 3), np.uint8)


@dataclass(frozen=True)
class Sensitivity:
    """What 1..100 means: how far above the noise a pixel must change, the least change in
    luma steps, the smallest share of the zone and the smallest blob (pixels at 160 x 90)."""

    noise_factor: float
    floor: float
    min_share: float
    min_blob_px: float

    @classmethod
    def of(cls, value: int) -> Sensitivity:
        if not 1 <= value <= 100:
            raise ValueError("sensitivity is 1..100")
        t = (value - 1) / 99  # 0 = least sensitive, 1 = most
        return cls(
            noise_factor=7.0 - 4.0 * t,  # 7 sigma .. 3 sigma
            floor=32.0 - 22.0 * t,  # 32 .. 10 luma steps
            min_share=float(np.exp(np.log(0.15) + t * (np.log(0.002) - np.log(0.15)))),
            min_blob_px=40.0 - 28.0 * t,  # 40 .. 12 pixels: more than one blurred speck
        )


@dataclass(frozen=True)
class ZoneMotion:
    moving: bool
    share: float  # of the zone's pixels changed
    blob_px: int  # pixels of the largest changed blob inside the zone


def zone_mask(points: Sequence[tuple[float, float]], width: int, height: int) -> BoolArray:
    """The pixels of a ``width`` x ``height`` picture inside a polygon of 0..1 points."""
    shift = 4  # sub-pixel precision for fillPoly: 1/16 pixel
    scaled = np.array(
        [[round(x * width * (1 << shift)), round(y * height * (1 << shift))] for x, y in points],
        dtype=np.int32,
    )
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [scaled], 1, lineType=cv2.LINE_8, shift=shift)
    return mask.astype(bool)


def luma_small(frame: Any, width: int) -> U8Array:
    """A decoded picture's luma, shrunk to ``width`` (aspect kept): the detector's input.

    Reads the decoder's Y plane in place (no colour conversion: motion is luma) and lets
    OpenCV's area filter average it down, which also removes most per-pixel noise."""
    plane = frame.planes[0]
    rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
    height = max(2, round(frame.height * width / frame.width))
    if frame.format.name.startswith(("yuvj", "yuv", "nv12", "gray")):
        return np.ascontiguousarray(cv2.resize(rows, (width, height), interpolation=cv2.INTER_AREA))
    grey = frame.reformat(width=width, height=height, format="gray")
    return np.asarray(grey.to_ndarray(), dtype=np.uint8)


class MotionDetector:
    """Motion per zone in a sequence of same-size grey pictures of one camera."""

    def __init__(
        self,
        width: int,
        height: int,
        zones: Mapping[int, tuple[Sequence[tuple[float, float]], int]],
        warm_pictures: int,
    ) -> None:
        """``zones``: id -> (outline in 0..1, sensitivity 1..100)."""
        self.width, self.height = width, height
        self.warm_pictures = warm_pictures
        scale = width * height / REFERENCE_AREA
        self._zones: dict[int, tuple[BoolArray, int, Sensitivity, float]] = {}
        for zone_id, (points, sensitivity) in zones.items():
            mask = zone_mask(points, width, height)
            level = Sensitivity.of(sensitivity)
            self._zones[zone_id] = (mask, max(1, int(mask.sum())), level, level.min_blob_px * scale)
        self._background: F32Array | None = None
        self._previous: F32Array | None = None  # the last picture, blurred
        self._still = np.zeros((height, width), np.uint8)  # pictures each pixel held still
        self._seen = 0

    def reset(self) -> None:
        """Forget the background (a reconnect: the next pictures may differ entirely)."""
        self._background = None
        self._previous = None
        self._still[:] = 0
        self._seen = 0

    @property
    def warm(self) -> bool:
        return self._seen >= self.warm_pictures

    def update(self, grey: U8Array) -> dict[int, ZoneMotion]:
        """Feed the next picture; motion per zone (none while warming up)."""
        if grey.shape != (self.height, self.width):
            raise ValueError(f"picture is {grey.shape}, expected {(self.height, self.width)}")
        picture = cv2.GaussianBlur(grey, (3, 3), 0).astype(np.float32)
        if self._background is None or self._previous is None:
            self._background = picture
            self._previous = picture
            self._seen = 1
            return {zone_id: ZoneMotion(False, 0.0, 0) for zone_id in self._zones}
        magnitude = _unlit(picture - self._background)
        step = _unlit(picture - self._previous)  # what changed since the last picture
        noise = float(np.median(magnitude)) * NOISE_TO_SIGMA
        warm = self.warm
        self._seen += 1
        result: dict[int, ZoneMotion] = {}
        changed_any = np.zeros(magnitude.shape, bool)
        stirring_any = np.zeros(magnitude.shape, bool)  # changed, and since the last picture
        for zone_id, (mask, area, level, min_blob) in self._zones.items():
            threshold = max(level.floor, level.noise_factor * noise)
            changed = (magnitude > threshold).astype(np.uint8)
            opened = cv2.morphologyEx(changed, cv2.MORPH_OPEN, _OPEN_KERNEL)
            inside = opened.astype(bool) & mask
            changed_any |= inside
            stirring_any |= inside & (step > threshold)
            share = float(inside.sum()) / area
            blob = _largest_blob(inside) if share > 0 else 0
            moving = warm and share >= level.min_share and blob >= min_blob
            result[zone_id] = ZoneMotion(moving, share, blob)
        # Changed but holding still: a stopped object, or a ghost of a wrong background.
        held = changed_any & ~stirring_any
        counted = np.minimum(self._still, STILL_PICTURES - 1) + np.uint8(1)
        self._still = np.where(held, counted, np.uint8(0)).astype(np.uint8)
        passing = changed_any & (self._still < STILL_PICTURES)
        rate = np.where(passing, LEARN_RATE_CHANGED, LEARN_RATE).astype(np.float32)
        self._background += rate * (picture - self._background)
        self._previous = picture
        return result


def _unlit(difference: F32Array) -> F32Array:
    """How much each pixel changed, less the change of the whole picture: a change of light
    everywhere (a cloud, the camera's exposure) is not motion."""
    unlit: F32Array = np.abs(difference - np.float32(np.median(difference)))
    return unlit


def _largest_blob(changed: BoolArray) -> int:
    count, _, stats, _ = cv2.connectedComponentsWithStats(changed.astype(np.uint8), connectivity=8)
    if count <= 1:
        return 0
    return int(stats[1:, cv2.CC_STAT_AREA].max())


OUTLINE_BGR = (0, 0, 255)  # red, as the wall marks alarms


def outlined_jpeg(
    frame: Any, outline: Sequence[tuple[float, float]], width: int, quality: int = 85
) -> tuple[bytes, int, int]:
    """A decoded picture as JPEG at most ``width`` wide, with a zone's outline drawn on it:
    what an alarm's snapshot shows the operator (where, not only what)."""
    out_w = min(width, frame.width) // 2 * 2
    out_h = max(2, round(frame.height * out_w / frame.width / 2) * 2)
    bgr = frame.to_ndarray(format="bgr24", width=out_w, height=out_h)
    points = np.array([[round(x * out_w), round(y * out_h)] for x, y in outline], np.int32)
    cv2.polylines(bgr, [points], True, OUTLINE_BGR, max(1, out_w // 320), cv2.LINE_AA)
    ok, buffer = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buffer.tobytes(), out_w, out_h
