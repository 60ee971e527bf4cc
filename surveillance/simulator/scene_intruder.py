"""The ``intruder`` scene: a still camera's view, and after ``event_at_s`` someone walking in.

A fixed camera over a textured, unchanging scene with sensor noise (what a zone's motion
detector must ignore); after the event a bright block the size of a person at that
distance walks in from the right edge into the centre-right of the picture (x 0.55-0.85,
y 0.45-0.85 of the picture: where tests draw their zone), lingers, and walks out again the
way it came. Nothing moves elsewhere but the frame counter in the top-left corner.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

U8Array = npt.NDArray[np.uint8]

NOISE_FRAMES = 8  # distinct temporal-noise fields cycled through
NOISE_AMPLITUDE = 8  # luma steps of sensor noise
WALK_IN_S = 2.0  # from outside the right edge to the middle of the region
LINGER_S = 2.0  # standing and shuffling there
WALK_OUT_S = 2.0  # back out through the right edge
# Where the intruder stands (0..1 of the picture): inside x 0.55-0.85, y 0.45-0.85.
BLOCK_X = (0.62, 0.78)  # left and right edge while it stands
BLOCK_Y = (0.50, 0.80)
BLOCK_LUMA = 225


def intruder_x(seconds_since_event: float) -> float | None:
    """The left edge of the block (0..1 of the width) this long after the event, or None
    when it is out of the picture."""
    t = seconds_since_event
    if t < 0 or t > WALK_IN_S + LINGER_S + WALK_OUT_S:
        return None
    outside = 1.0  # its left edge on the right border: just out of the picture
    if t < WALK_IN_S:
        return outside + (BLOCK_X[0] - outside) * t / WALK_IN_S
    if t < WALK_IN_S + LINGER_S:  # shuffling a little on the spot
        return BLOCK_X[0] + 0.02 * float(np.sin((t - WALK_IN_S) * 4.0))
    back = t - WALK_IN_S - LINGER_S
    return BLOCK_X[0] + (outside - BLOCK_X[0]) * back / WALK_OUT_S


def intruder_pictures(
    width: int, height: int, fps: int, frame_count: int, event_at_s: float
) -> Iterator[tuple[U8Array, int]]:
    """Planar YUV 4:2:0 pictures and their frame numbers (for the counter)."""
    w, h = width, height
    rng = np.random.default_rng(4321)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # Texture like ground, walls and foliage: strong enough that a codec's noise is a real
    # test, but unchanging.
    waves = 45 * np.sin(xx / 29.0) * np.cos(yy / 17.0) + 30 * np.sin((2 * xx - yy) / 71.0)
    grain = rng.normal(0, 14, size=(h, w))
    base = np.clip(110 + waves + grain, 16, 200).astype(np.uint8)
    noise = rng.integers(0, NOISE_AMPLITUDE + 1, size=(NOISE_FRAMES, h, w), dtype=np.uint8)
    out = np.empty((h * 3 // 2, w), dtype=np.uint8)
    luma, chroma = out[:h], out[h:].reshape(2, h // 2, w // 2)
    chroma[0] = (128 + 20 * np.sin(xx[::2, ::2] / 61.0)).astype(np.uint8)
    chroma[1] = (128 + 20 * np.cos(yy[::2, ::2] / 47.0)).astype(np.uint8)
    top, bottom = round(BLOCK_Y[0] * h), round(BLOCK_Y[1] * h)
    block_w = round((BLOCK_X[1] - BLOCK_X[0]) * w)
    for index in range(frame_count):
        luma[:] = base
        luma += noise[index % NOISE_FRAMES]
        left_share = intruder_x(index / fps - event_at_s)
        if left_share is not None:
            left = round(left_share * w)
            luma[top:bottom, max(0, left) : max(0, min(w, left + block_w))] = BLOCK_LUMA
        yield out, index
