"""A planar YUV 4:2:0 picture to compose into, with text drawn by OpenCV.

The mosaic composes in the encoder's own pixel format: scaled tiles are pasted plane by
plane and go to x264 without a colour conversion of the whole 1080p (or 2160p) picture.
Only MJPEG and snapshot consumers pay for a BGR conversion, and only when they ask.

Text is white luma on a black band with neutral chroma, so it reads the same whatever
is behind it. OpenCV's Hershey fonts know ASCII only; :func:`ascii_text` folds anything
else (accents dropped, other scripts as ``?``) so that no camera name can crash a frame.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

U8Array = npt.NDArray[np.uint8]

BLACK_Y = 16  # video-range luma of black
WHITE_Y = 235  # video-range luma of white
NEUTRAL_C = 128  # chroma of grey
FONT = cv2.FONT_HERSHEY_SIMPLEX
FONT_PX_AT_SCALE_1 = 22  # cap height in pixels of FONT at scale 1.0
TEXT_FILL_RATIO = 0.55  # cap height as a share of the band's height
TEXT_MARGIN_PX = 6  # space left of the text inside its band


@dataclass(frozen=True, slots=True)
class Rect:
    """A rectangle in pixels; the mosaic keeps every edge even so chroma planes line up."""

    x: int
    y: int
    w: int
    h: int


def ascii_text(text: str) -> str:
    """``text`` in printable ASCII: accents dropped (``Křižovatka`` -> ``Krizovatka``),
    other characters as ``?``."""
    folded = unicodedata.normalize("NFKD", text)
    out = []
    for char in folded:
        if unicodedata.combining(char):
            continue
        out.append(char if " " <= char <= "~" else "?")
    return "".join(out)


@functools.lru_cache(maxsize=512)
def text_band(text: str, width: int, height: int) -> U8Array:
    """A luma band ``height`` x ``width``: ``text`` in white on black, cut to fit.

    Cached: labels and health lines repeat every frame, and drawing them once per change
    keeps the per-frame cost to a copy. The result is shared: never write into it.
    """
    band = np.full((height, width), BLACK_Y, np.uint8)
    scale = max(0.3, height * TEXT_FILL_RATIO / FONT_PX_AT_SCALE_1)
    thickness = 1 if scale < 1.2 else 2
    room = width - 2 * TEXT_MARGIN_PX
    shown = text
    while shown and cv2.getTextSize(shown, FONT, scale, thickness)[0][0] > room:
        shown = shown[:-2] + "." if len(shown) > 2 else ""
    (_, text_h), _ = cv2.getTextSize(shown or " ", FONT, scale, thickness)
    baseline_y = (height + text_h) // 2
    if shown:
        cv2.putText(
            band, shown, (TEXT_MARGIN_PX, baseline_y), FONT, scale, WHITE_Y, thickness, cv2.LINE_AA
        )
    band.flags.writeable = False
    return band


class YuvCanvas:
    """One I420 picture: a single buffer (what ``VideoFrame.from_ndarray`` takes) and
    views of its three planes."""

    def __init__(self, width: int, height: int) -> None:
        if width % 2 or height % 2:
            raise ValueError(f"{width}x{height}: both sides must be even")
        self.width = width
        self.height = height
        self.buffer: U8Array = np.empty((height * 3 // 2, width), np.uint8)
        flat = self.buffer.reshape(-1)
        luma = width * height
        self.y = flat[:luma].reshape(height, width)
        self.u = flat[luma : luma * 5 // 4].reshape(height // 2, width // 2)
        self.v = flat[luma * 5 // 4 :].reshape(height // 2, width // 2)
        self.fill(Rect(0, 0, width, height))

    def fill(self, rect: Rect, luma: int = BLACK_Y) -> None:
        self.y[rect.y : rect.y + rect.h, rect.x : rect.x + rect.w] = luma
        cx, cy, cw, ch = rect.x // 2, rect.y // 2, rect.w // 2, rect.h // 2
        self.u[cy : cy + ch, cx : cx + cw] = NEUTRAL_C
        self.v[cy : cy + ch, cx : cx + cw] = NEUTRAL_C

    def paste(self, rect: Rect, i420: U8Array) -> None:
        """Copy an I420 picture of exactly ``rect``'s size (PyAV's ``to_ndarray`` layout)."""
        w, h = rect.w, rect.h
        flat = i420.reshape(-1)
        luma = w * h
        self.y[rect.y : rect.y + h, rect.x : rect.x + w] = flat[:luma].reshape(h, w)
        cx, cy = rect.x // 2, rect.y // 2
        chroma = (h // 2, w // 2)
        self.u[cy : cy + h // 2, cx : cx + w // 2] = flat[luma : luma * 5 // 4].reshape(chroma)
        self.v[cy : cy + h // 2, cx : cx + w // 2] = flat[luma * 5 // 4 :].reshape(chroma)

    def text(self, rect: Rect, text: str) -> None:
        """A black band filling ``rect`` with ``text`` (any Unicode) in white."""
        self.fill(rect)
        band = text_band(ascii_text(text), rect.w, rect.h)
        self.y[rect.y : rect.y + rect.h, rect.x : rect.x + rect.w] = band


def i420_to_bgr(i420: U8Array) -> U8Array:
    return np.asarray(cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420), dtype=np.uint8)
