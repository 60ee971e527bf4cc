"""What one small decoded picture says about a camera: too dark, too bright, covered, one
colour, out of focus, unchanged since the last one, or turned away from its reference.

Pure numpy on a small picture (:data:`ANALYSIS_WIDTH` wide, full-range luma and the two
chroma planes), taken from one keyframe every few seconds: the cost is a keyframe decode
and a scale, never every frame. Each figure is made to hold across cameras rather than per
camera: contrast is a standard deviation, sharpness is relative to contrast, the reference
match is a correlation of the picture's detail, blind to brightness and small shakes.

Measured on this project's generated scenes and the two real clips of ``../shared/footage``
(car-detection: grey, foggy, std 11; one-by-one-person: a bright room), at 160 wide:

| figure | normal pictures | fault scenes |
|---|---|---|
| mean luma | 113-146 | black 1.7 |
| contrast (std) | 11-70 | covered 2.7, black 0.6 |
| sharpness | 0.18-0.32 | defocus 0.05 |
| one colour: share near the median colour | up to 1.0, saturation 0-39 | sprayed 1.0, sat. 81 |
| change since the last keyframe (blurred) | moving 2-200, still room 0.74-1.6 | frozen <= 1.04 |

The change figure compares the two pictures blurred (CHANGE_BLUR_SIGMA): an encoder that keeps
refining a held picture at a constant bit rate (x264 at 512 kbit/s, 2 s GOP: ~20 different
decoded pictures per 10 s of one frozen picture, raw change 1.5-2.2) differs only by fine
coding noise, which the blur averages away (0.55-1.04); a person or a car is pixels wide even
at 160 and survives it. So the check needs no help from the packets: a frozen camera is found
whatever its encoder spends on the held picture.

The defaults in :class:`Thresholds` sit between the two columns; why each is where it is
stands beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import cv2
import numpy as np
import numpy.typing as npt

ANALYSIS_WIDTH = 160  # pixels; the picture is scaled to this width, height keeping the aspect
CHANGE_BLOCK = 10  # pixels (at ANALYSIS_WIDTH) of the blocks the change figure averages over
CHANGE_BLUR_SIGMA = 2.0  # pixels (at ANALYSIS_WIDTH): coding noise is finer than this
# Luma std under which a picture shows too little for "unchanged" to mean "frozen": a lens
# covered in a tag that tolerates low contrast (mist) is still covered, not frozen (the
# covered scene: 2.7; the foggy real clip: 11).
FROZEN_MIN_CONTRAST = 6.0
# Hysteresis of the frozen check: once a camera is flagged frozen, a picture counts as changed
# again only when its change reaches this many times ``frozen_diff``. A CBR encoder refining a
# held picture reads just under and just over frozen_diff by turns (the demo's camera live:
# 0.79-1.58 around 1.5); without this margin the flag came and went every few minutes. Real
# motion (2-200) clears it; a still room that was once flagged stays flagged until something
# moves, which is what its flag said anyway.
FROZEN_RELEASE_FACTOR = 2.0
MATCH_CELL = 4  # pixels (at ANALYSIS_WIDTH) of the cells the reference match compares
MATCH_SHIFT_CELLS = 2  # the reference match forgives shifts up to this many cells (5 %)
# Chroma distance from grey (8-bit steps) under which a picture has no colour to speak of:
# a grey picture is "covered" or ordinary, never "one colour".
MIN_SATURATION = 20.0
CHROMA_NEAR = 12.0  # 8-bit chroma steps: a pixel this close to the picture's median colour

F32Array = npt.NDArray[np.float32]
U8Array = npt.NDArray[np.uint8]


class Check(StrEnum):
    """The picture checks; each names the event it raises (``quality.<check>``)."""

    DARK = "dark"
    BRIGHT = "bright"
    ONE_COLOUR = "one_colour"
    COVERED = "covered"
    DEFOCUS = "defocus"
    FROZEN = "frozen"
    MOVED = "moved"


@dataclass(frozen=True)
class Thresholds:
    """Where a figure turns into a failed check. Defaults from the table in the docstring."""

    dark_luma: float = 18.0  # mean full-range luma below this: too dark (black: 1.7)
    bright_luma: float = 240.0  # mean above this: blinded (sun in the lens, IR bounce)
    min_contrast: float = 6.0  # luma std below this: covered (covered 2.7, foggy real 11)
    min_sharpness: float = 0.10  # |Laplacian| per unit of contrast (defocus 0.05, real 0.18)
    one_colour: float = 0.95  # share of pixels near the median colour (sprayed 1.0)
    frozen_diff: float = 1.5  # largest blurred block's mean change (frozen <= 1.04, real >= 1.6)
    moved_similarity: float = 0.5  # reference match below this: moved (turned ~0, same ~0.9)


@dataclass(frozen=True)
class SmallPicture:
    """A picture at analysis size: full-range luma (0..255) and the U and V planes."""

    luma: F32Array
    u: F32Array
    v: F32Array

    @classmethod
    def from_yuv420(cls, planar: U8Array) -> SmallPicture:
        """From a planar YUV 4:2:0 array, shape (height * 3 // 2, width), limited range
        (what ``VideoFrame.to_ndarray(format="yuv420p", width=..., height=...)`` gives)."""
        height = planar.shape[0] * 2 // 3
        width = planar.shape[1]
        luma = (planar[:height].astype(np.float32) - 16.0) * np.float32(255.0 / 219.0)
        chroma = planar[height:].reshape(2, height // 2, width // 2).astype(np.float32)
        return cls(np.clip(luma, 0.0, 255.0), chroma[0], chroma[1])

    @classmethod
    def from_luma(cls, luma: F32Array) -> SmallPicture:
        """A grey picture (a stored reference: only its luma is compared)."""
        h, w = luma.shape
        neutral = np.full((h // 2, w // 2), 128.0, dtype=np.float32)
        return cls(luma, neutral, neutral)

    @property
    def size(self) -> tuple[int, int]:
        return self.luma.shape[1], self.luma.shape[0]


def analysis_size(width: int, height: int) -> tuple[int, int]:
    """The analysis picture's (width, height) for a source of this size: even numbers."""
    out_w = min(ANALYSIS_WIDTH, width - width % 2)
    out_h = max(2, round(height * out_w / width / 2) * 2)
    return out_w, out_h


@dataclass(frozen=True)
class Figures:
    """What was measured on one picture (None: not measurable, e.g. no reference)."""

    mean: float
    contrast: float
    sharpness: float
    colour_share: float  # share of pixels near the median colour
    saturation: float  # the median colour's distance from grey
    change: float | None  # vs the previous picture
    similarity: float | None  # vs the reference picture


def measure(
    picture: SmallPicture, previous: SmallPicture | None, reference: SmallPicture | None
) -> Figures:
    luma = picture.luma
    contrast = float(luma.std())
    return Figures(
        mean=float(luma.mean()),
        contrast=contrast,
        sharpness=_sharpness(luma, contrast),
        colour_share=_colour_share(picture),
        saturation=_saturation(picture),
        change=None
        if previous is None or previous.size != picture.size
        else _change(picture, previous),
        similarity=(
            None if reference is None else similarity(picture.luma, _resized(reference, picture))
        ),
    )


def failing(figures: Figures, t: Thresholds, *, frozen_flagged: bool = False) -> frozenset[Check]:
    """The checks this picture fails. The most specific verdict hides the ones it implies:
    a black picture is also without contrast, detail and change, but it is black; and a
    picture with nothing in it cannot be judged frozen, out of focus or moved.

    ``frozen_flagged``: the camera is flagged frozen already; the picture must then change by
    FROZEN_RELEASE_FACTOR times ``frozen_diff`` to pass (hysteresis)."""
    if figures.mean < t.dark_luma:
        return frozenset({Check.DARK})
    if figures.mean > t.bright_luma:
        return frozenset({Check.BRIGHT})
    if figures.colour_share >= t.one_colour and figures.saturation >= MIN_SATURATION:
        return frozenset({Check.ONE_COLOUR})
    if figures.contrast < t.min_contrast:
        return frozenset({Check.COVERED})
    found: set[Check] = set()
    if figures.sharpness < t.min_sharpness:
        found.add(Check.DEFOCUS)
    frozen_diff = t.frozen_diff * (FROZEN_RELEASE_FACTOR if frozen_flagged else 1.0)
    frozen = figures.change is not None and figures.change < frozen_diff
    if frozen and figures.contrast >= FROZEN_MIN_CONTRAST:
        found.add(Check.FROZEN)
    if figures.similarity is not None and figures.similarity < t.moved_similarity:
        found.add(Check.MOVED)
    return frozenset(found)


def _sharpness(luma: F32Array, contrast: float) -> float:
    # Mean |4-neighbour Laplacian| per unit of contrast: fine detail relative to how much
    # the picture varies at all, so a dim or foggy but focused scene is not "defocused".
    lap = 4 * luma[1:-1, 1:-1] - luma[:-2, 1:-1] - luma[2:, 1:-1] - luma[1:-1, :-2] - luma[1:-1, 2:]
    return float(np.abs(lap).mean()) / (contrast + 1.0)


def _median_colour(picture: SmallPicture) -> tuple[float, float]:
    return float(np.median(picture.u)), float(np.median(picture.v))


def _saturation(picture: SmallPicture) -> float:
    u, v = _median_colour(picture)
    return float(np.hypot(u - 128.0, v - 128.0))


def _colour_share(picture: SmallPicture) -> float:
    u, v = _median_colour(picture)
    near = (np.abs(picture.u - u) < CHROMA_NEAR) & (np.abs(picture.v - v) < CHROMA_NEAR)
    return float(near.mean())


def _change(picture: SmallPicture, previous: SmallPicture) -> float:
    # The largest block's mean change, not the picture's: one person crossing a still room
    # is a change, however small a part of the picture they are. Blurred first: what an
    # encoder re-codes differently in a held picture is not a change (module docstring).
    diff = np.abs(_blurred(picture.luma) - _blurred(previous.luma))
    return float(_block_means(diff, CHANGE_BLOCK).max())


def _blurred(luma: F32Array) -> F32Array:
    smooth = cv2.GaussianBlur(luma, (0, 0), CHANGE_BLUR_SIGMA, borderType=cv2.BORDER_REPLICATE)
    return np.asarray(smooth, dtype=np.float32)


def _block_means(plane: F32Array, block: int) -> F32Array:
    rows, cols = plane.shape[0] // block, plane.shape[1] // block
    if rows == 0 or cols == 0:
        return plane.astype(np.float32)
    cut = plane[: rows * block, : cols * block]
    return np.asarray(cut.reshape(rows, block, cols, block).mean(axis=(1, 3)), dtype=np.float32)


def _resized(reference: SmallPicture, like: SmallPicture) -> F32Array:
    """The reference's luma at ``like``'s size (a camera whose resolution changed)."""
    if reference.size == like.size:
        return reference.luma
    h, w = like.luma.shape
    rows = (np.arange(h) * reference.luma.shape[0] // h).astype(np.intp)
    cols = (np.arange(w) * reference.luma.shape[1] // w).astype(np.intp)
    return np.asarray(reference.luma[rows][:, cols], dtype=np.float32)


def similarity(luma: F32Array, reference: F32Array) -> float:
    """How well a picture's detail matches the reference's, -1..1, forgiving brightness.

    Both are reduced to MATCH_CELL cells, their slow brightness gradient removed (light
    changes through the day, a cloud), normalised, and correlated at every shift up to
    MATCH_SHIFT_CELLS (a camera on a pole sways): the best correlation is the answer.
    """
    a, b = _detail(luma), _detail(reference)
    best = -1.0
    s = MATCH_SHIFT_CELLS
    rows, cols = a.shape
    for dy in range(-s, s + 1):
        for dx in range(-s, s + 1):
            pa = a[max(0, dy) : rows + min(0, dy), max(0, dx) : cols + min(0, dx)]
            pb = b[max(0, -dy) : rows + min(0, -dy), max(0, -dx) : cols + min(0, -dx)]
            best = max(best, _correlation(pa, pb))
    return best


def _detail(luma: F32Array) -> F32Array:
    cells = _block_means(luma, MATCH_CELL)
    smooth = _box(cells, 3)
    return (cells - smooth).astype(np.float32)


def _box(plane: F32Array, radius: int) -> F32Array:
    size = 2 * radius + 1
    smooth = cv2.blur(plane, (size, size), borderType=cv2.BORDER_REPLICATE)
    return np.asarray(smooth, dtype=np.float32)


def _correlation(a: F32Array, b: F32Array) -> float:
    a = a - a.mean()
    b = b - b.mean()
    denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum()) / denominator if denominator > 1e-6 else 0.0
