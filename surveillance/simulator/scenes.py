"""What a generated clip shows: picture generators by scene name.

``pan`` is the ordinary camera picture (a textured scene panning, sensor noise, a bright
object crossing it). The other scenes are the faults video-quality diagnosis must find, as a
camera shows them: the pan picture until ``event_at_s``, then the fault until the clip ends
(the simulator loops the clip, so the fault comes and goes once per loop):

- ``frozen``: one picture encoded again and again (a hung encoder or a stuck sensor pipe);
- ``black``: the sensor gives nothing (near code 16 with faint noise);
- ``covered``: something over the lens: near-uniform dark grey, slight noise, soft shading;
- ``defocus``: the pan scene heavily blurred (lens knocked out of focus, fogged dome);
- ``sprayed``: paint over the dome: one saturated colour, soft shading, slight noise;
- ``turned``: a fixed camera's view (no pan), then a different, shifted view of another
  texture: the camera was knocked round.

One scene is not a fault: ``intruder``, a still view into which someone walks at
``event_at_s``, for zone motion.

Each generator yields planar YUV 4:2:0 pictures and the frame number ``clips.py`` draws into
the top-left corner, or None for no counter (a fault's picture must stay what it is: a counter
over a black picture is not black, one over a blur is sharp).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

NOISE_FRAMES = 8  # distinct temporal-noise fields cycled through; enough to defeat prediction
NOISE_AMPLITUDE = 10  # luma steps of temporal noise; sets how hard the clip is to compress
FAULT_NOISE_AMPLITUDE = 3  # luma steps of noise on a black, covered or sprayed picture
DEFOCUS_SIGMA_FRACTION = 0.012  # Gaussian blur sigma as a fraction of the picture's width

U8Array = npt.NDArray[np.uint8]
Picture = tuple[U8Array, int | None]  # planar YUV 4:2:0, frame number to draw or None


@dataclass(frozen=True)
class SceneGeometry:
    """What a scene needs to know of its clip."""

    width: int
    height: int
    frame_count: int
    fps: int
    event_at_s: float = 0.0  # when a fault scene's fault begins, seconds into the clip

    @property
    def event_frame(self) -> int:
        return max(0, min(self.frame_count, round(self.event_at_s * self.fps)))


Scene = Callable[[SceneGeometry], Iterator[Picture]]


class _Pan:
    """The pan scene's state: a static texture panning, temporal noise, a moving block."""

    def __init__(self, g: SceneGeometry, seed: int = 1234, still: bool = False) -> None:
        w, h = g.width, g.height
        rng = np.random.default_rng(seed)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        # A static texture (smooth waves plus fixed grain) that pans: most of each frame can be
        # predicted by motion compensation, like a camera panning over a scene.
        waves = 60 * np.sin(xx / 37.0) * np.cos(yy / 23.0) + 40 * np.sin((xx + 2 * yy) / 91.0)
        grain = rng.normal(0, 18, size=(h, w))
        self.base = np.clip(118 + waves + grain, 16, 235 - NOISE_AMPLITUDE).astype(np.uint8)
        # Temporal noise (sensor noise) cannot be predicted: what makes the bitrate realistic.
        self.noise = rng.integers(0, NOISE_AMPLITUDE + 1, size=(NOISE_FRAMES, h, w), dtype=np.uint8)
        self.cu = (128 + 40 * np.sin(xx[::2, ::2] / 53.0)).astype(np.uint8)
        self.cv = (128 + 40 * np.cos(yy[::2, ::2] / 41.0)).astype(np.uint8)
        self.box_w, self.box_h = max(16, w // 8), max(16, h // 8)
        self.w, self.h, self.still = w, h, still
        self.out = np.empty((h * 3 // 2, w), dtype=np.uint8)

    def draw(self, index: int) -> U8Array:
        w, h, out = self.w, self.h, self.out
        luma, chroma = out[:h], out[h:].reshape(2, h // 2, w // 2)
        dx, dy = (0, 0) if self.still else ((3 * index) % w, index % h)
        luma[:] = np.roll(self.base, (dy, dx), axis=(0, 1))
        luma += self.noise[index % NOISE_FRAMES]
        # A bright object crossing the scene, for motion detection to find.
        bx = (7 * index) % (w - self.box_w)
        by = (h - self.box_h) // 2 + int((h // 4) * np.sin(index / 20.0))
        luma[by : by + self.box_h, bx : bx + self.box_w] = 230
        chroma[0] = np.roll(self.cu, dx // 2, axis=1)
        chroma[1] = np.roll(self.cv, dy // 2, axis=0)
        return out


def pan(g: SceneGeometry) -> Iterator[Picture]:
    scene = _Pan(g)
    for index in range(g.frame_count):
        yield scene.draw(index), index


def _pan_then(g: SceneGeometry, fault: Callable[[int], Picture]) -> Iterator[Picture]:
    """The pan picture before the fault's frame, ``fault(index)`` from it on."""
    scene = _Pan(g)
    for index in range(g.frame_count):
        yield (scene.draw(index), index) if index < g.event_frame else fault(index)


def frozen(g: SceneGeometry) -> Iterator[Picture]:
    scene = _Pan(g)
    held: U8Array | None = None
    for index in range(g.frame_count):
        if index < g.event_frame:
            yield scene.draw(index), index
            continue
        if held is None:
            held = scene.draw(index).copy()
        # The same picture with the same counter every time: a hung encoder repeats it.
        yield held, g.event_frame


def _flat(
    g: SceneGeometry, luma: float, u: int, v: int, shading: float
) -> Callable[[int], Picture]:
    """A near-uniform picture: a soft left-to-right shading and faint temporal noise."""
    rng = np.random.default_rng(99)
    w, h = g.width, g.height
    ramp = np.linspace(-shading, shading, w, dtype=np.float32)[None, :]
    base = np.clip(luma + ramp + np.zeros((h, 1), np.float32), 16, 235 - FAULT_NOISE_AMPLITUDE)
    base_u8 = base.astype(np.uint8)
    noise = rng.integers(0, FAULT_NOISE_AMPLITUDE + 1, size=(NOISE_FRAMES, h, w), dtype=np.uint8)
    out = np.empty((h * 3 // 2, w), dtype=np.uint8)

    def picture(index: int) -> Picture:
        out[:h] = base_u8 + noise[index % NOISE_FRAMES]
        chroma = out[h:].reshape(2, h // 2, w // 2)
        chroma[0], chroma[1] = u, v
        return out, None

    return picture


def black(g: SceneGeometry) -> Iterator[Picture]:
    return _pan_then(g, _flat(g, luma=16, u=128, v=128, shading=0))


def covered(g: SceneGeometry) -> Iterator[Picture]:
    # Dark but not black (a hand, a bag, a tarpaulin lets some light through): a
    # low-contrast check must find it, not the darkness check.
    return _pan_then(g, _flat(g, luma=52, u=126, v=130, shading=4))


def sprayed(g: SceneGeometry) -> Iterator[Picture]:
    # Red spray paint lit from one side: one saturated colour, brightness varying a little.
    return _pan_then(g, _flat(g, luma=82, u=90, v=200, shading=10))


def defocus(g: SceneGeometry) -> Iterator[Picture]:
    scene = _Pan(g)
    sigma = g.width * DEFOCUS_SIGMA_FRACTION
    rng = np.random.default_rng(7)
    noise = rng.integers(0, FAULT_NOISE_AMPLITUDE + 1, size=(NOISE_FRAMES, g.height, g.width))

    def fault(index: int) -> Picture:
        picture = scene.draw(index)
        blurred = cv2.GaussianBlur(picture[: g.height], (0, 0), sigma)
        blurred = blurred + noise[index % NOISE_FRAMES]
        picture[: g.height] = np.clip(blurred, 16, 235).astype(np.uint8)
        return picture, None

    return _pan_then(g, fault)


def turned(g: SceneGeometry) -> Iterator[Picture]:
    # A fixed camera's view (the pan texture held still: only noise and the crossing object
    # move; a view that pans could match no reference), then from event_at_s another view:
    # another texture, shifted by a third of the picture, as a camera knocked round sees.
    here, elsewhere = _Pan(g, still=True), _Pan(g, seed=4321, still=True)
    shift = (g.height // 5, g.width // 3)
    for index in range(g.frame_count):
        if index < g.event_frame:
            yield here.draw(index), index
            continue
        picture = elsewhere.draw(index)
        picture[: g.height] = np.roll(picture[: g.height], shift, axis=(0, 1))
        yield picture, index


# -- intruder: a still view, then someone walking into the zone tests draw ---------------
INTRUDER_NOISE_AMPLITUDE = 8  # luma steps of sensor noise on the still view
WALK_IN_S = 2.0  # from outside the right edge to where it stands
LINGER_S = 2.0  # standing and shuffling there
WALK_OUT_S = 2.0  # back out through the right edge
# Where the intruder stands (0..1 of the picture), inside x 0.55-0.85, y 0.45-0.85: the
# zone tests draw. Its size is a person's at that distance.
INTRUDER_X = (0.62, 0.78)  # left and right edge while it stands
INTRUDER_Y = (0.50, 0.80)
INTRUDER_LUMA = 225


def intruder_left(seconds_since_event: float) -> float | None:
    """The intruder's left edge (0..1 of the width) this long after the event, or None
    while it is out of the picture."""
    t = seconds_since_event
    if t < 0 or t > WALK_IN_S + LINGER_S + WALK_OUT_S:
        return None
    outside, standing = 1.0, INTRUDER_X[0]  # outside: its left edge on the right border
    if t < WALK_IN_S:
        return outside + (standing - outside) * t / WALK_IN_S
    if t < WALK_IN_S + LINGER_S:  # shuffling a little on the spot
        return standing + 0.02 * float(np.sin((t - WALK_IN_S) * 4.0))
    return standing + (outside - standing) * (t - WALK_IN_S - LINGER_S) / WALK_OUT_S


def intruder(g: SceneGeometry) -> Iterator[Picture]:
    """A fixed camera over an unchanging textured scene with sensor noise (what a zone's
    motion detector must ignore); from ``event_at_s`` a bright block walks in from the
    right edge, lingers in the centre-right and walks out the way it came. Nothing else
    moves but the frame counter in the top-left corner."""
    w, h = g.width, g.height
    rng = np.random.default_rng(4321)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # Like ground, walls and foliage: enough texture that the codec's noise is a real test.
    waves = 45 * np.sin(xx / 29.0) * np.cos(yy / 17.0) + 30 * np.sin((2 * xx - yy) / 71.0)
    grain = rng.normal(0, 14, size=(h, w))
    base = np.clip(110 + waves + grain, 16, 200).astype(np.uint8)
    noise = rng.integers(0, INTRUDER_NOISE_AMPLITUDE + 1, size=(NOISE_FRAMES, h, w), dtype=np.uint8)
    out = np.empty((h * 3 // 2, w), dtype=np.uint8)
    luma, chroma = out[:h], out[h:].reshape(2, h // 2, w // 2)
    chroma[0] = (128 + 20 * np.sin(xx[::2, ::2] / 61.0)).astype(np.uint8)
    chroma[1] = (128 + 20 * np.cos(yy[::2, ::2] / 47.0)).astype(np.uint8)
    top, bottom = round(INTRUDER_Y[0] * h), round(INTRUDER_Y[1] * h)
    block_w = round((INTRUDER_X[1] - INTRUDER_X[0]) * w)
    for index in range(g.frame_count):
        luma[:] = base
        luma += noise[index % NOISE_FRAMES]
        left_share = intruder_left(index / g.fps - g.event_at_s)
        if left_share is not None:
            left = round(left_share * w)
            luma[top:bottom, max(0, left) : max(0, min(w, left + block_w))] = INTRUDER_LUMA
        yield out, index


SCENES: dict[str, Scene] = {
    "pan": pan,
    "frozen": frozen,
    "black": black,
    "covered": covered,
    "defocus": defocus,
    "sprayed": sprayed,
    "turned": turned,
    "intruder": intruder,
}
FAULT_SCENES = ("frozen", "black", "covered", "defocus", "sprayed", "turned")


def pictures(scene: str, g: SceneGeometry) -> Iterator[Picture]:
    """The pictures of ``scene`` (a name in SCENES) for a clip of geometry ``g``."""
    return SCENES[scene](g)
