"""The wide scene a simulated PTZ camera looks at, and which part of it a view shows.

The simulator (``gst_server.py``, mount kind "ptz") crops a view window out of one still
PNG and encodes it live; :func:`view_crop` is the one place that says where the window is
for a (pan, tilt, zoom), so the server, the tests and the bench agree on it.

The scene is built so that a moved view is a clear signal: large unique features (a label
and a shape per grid cell, over a colour ramp that differs across the whole scene) make any
two views a noticeable distance apart look different; static, blurred texture gives the
encoder's motion search something to lock onto; and nothing in the scene changes over
time, so a still view encodes to almost nothing. (The simulator lays a small moving ball
over the view's bottom-right corner, so the picture is live as a real camera's is: the
service's diagnosis would call a picture that never changes frozen. ``picture_change``
leaves that corner out.)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

# The widest view (zoom 0) shows this fraction of the scene's width and height, so pan and
# tilt have room to move; zoom 1 magnifies MAX_MAGNIFICATION times more (ONVIF's zoom space
# is 0..1; "zoom 1 = 4x" is our simulated lens).
WIDEST_VIEW_FRACTION = 0.5
MAX_MAGNIFICATION = 4.0
GRID_COLUMNS = 16  # one label and one shape per cell: ~160 scene pixels at 2560 wide
GRID_ROWS = 9

U8Array = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Crop:
    """A view window in scene pixels (even numbers: 4:2:0 pictures crop in 2x2 blocks)."""

    left: int
    top: int
    width: int
    height: int

    def borders(self, scene_size: tuple[int, int]) -> dict[str, int]:
        """videocrop's properties: pixels cut off at each side of the scene."""
        scene_width, scene_height = scene_size
        return {
            "left": self.left,
            "top": self.top,
            "right": scene_width - self.left - self.width,
            "bottom": scene_height - self.top - self.height,
        }


def view_crop(
    scene_size: tuple[int, int],
    out_size: tuple[int, int],
    pan: float,
    tilt: float,
    zoom: float,
) -> Crop:
    """The window a view shows: pan -1..1 (left..right), tilt -1..1 (down..up), zoom 0..1.

    Pan and tilt aim the centre, independently of zoom, as on a real camera: (0, 0) is the
    scene's centre and +-1 puts the widest view's edge at the scene's edge. The window has
    the output's aspect ratio, so the picture is never stretched. Values out of range are
    clamped, as a camera stops at its end stops.
    """
    scene_width, scene_height = scene_size
    out_width, out_height = out_size
    pan, tilt, zoom = _clamp(pan, -1, 1), _clamp(tilt, -1, 1), _clamp(zoom, 0, 1)
    widest_width = min(
        scene_width * WIDEST_VIEW_FRACTION,
        scene_height * WIDEST_VIEW_FRACTION * out_width / out_height,
    )
    widest_height = widest_width * out_height / out_width
    centre_x = scene_width / 2 + pan * (scene_width - widest_width) / 2
    centre_y = scene_height / 2 - tilt * (scene_height - widest_height) / 2
    magnification = 1 + (MAX_MAGNIFICATION - 1) * zoom
    width = max(2, _even(widest_width / magnification))
    height = max(2, _even(widest_height / magnification))
    left = min(max(0, _even(centre_x - width / 2)), scene_width - width)
    top = min(max(0, _even(centre_y - height / 2)), scene_height - height)
    return Crop(left, top, width, height)


def expected_view(
    scene: U8Array, out_size: tuple[int, int], pan: float, tilt: float, zoom: float
) -> U8Array:
    """The picture a view should show (BGR, out_size), as the server crops and scales it.

    The scene only: the live mark the server lays over the bottom-right corner is not in
    it (compare with ``picture_change.difference``, which leaves that corner out)."""
    height, width = scene.shape[:2]
    crop = view_crop((width, height), out_size, pan, tilt, zoom)
    window = scene[crop.top : crop.top + crop.height, crop.left : crop.left + crop.width]
    interpolation = cv2.INTER_AREA if crop.width > out_size[0] else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(window, out_size, interpolation=interpolation), np.uint8)


def write_scene(path: Path, width: int = 2560, height: int = 1440, seed: int = 0) -> Path:
    """Write the scene as a PNG (made once; the same seed gives the same picture)."""
    if width < 64 or height < 64 or width % 2 or height % 2:
        raise ValueError(f"scene size {width}x{height}: both even and at least 64")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), make_scene(width, height, seed)):
        raise OSError(f"cannot write {path}")
    return path


def scene_size(path: Path) -> tuple[int, int]:
    """(width, height) of a scene PNG, from its header (PNG spec, s.11.2.2: IHDR first)."""
    with path.open("rb") as file:
        header = file.read(24)
    if len(header) < 24 or header[:8] != b"\x89PNG\r\n\x1a\n" or header[12:16] != b"IHDR":
        raise ValueError(f"{path} is not a PNG")
    width, height = struct.unpack(">II", header[16:24])
    return int(width), int(height)


def make_scene(width: int, height: int, seed: int = 0) -> U8Array:
    """The scene as a BGR picture."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    # A colour ramp across the whole scene: even two plain areas far apart differ.
    ramp = np.stack(
        [
            60 + 120 * xs / width,
            60 + 120 * ys / height,
            170 - 90 * (xs / width + ys / height) / 2,
        ],
        axis=-1,
    )
    # Static texture, blurred so it costs the encoder little but gives motion search a hold.
    grain = rng.normal(0, 1, (height // 4, width // 4)).astype(np.float32)
    grain = np.asarray(
        cv2.resize(cv2.GaussianBlur(grain, (0, 0), 1.5), (width, height)), np.float32
    )
    texture = 18 * grain / max(float(np.abs(grain).max()), 1e-6)
    scene: U8Array = np.clip(ramp + texture[..., None], 0, 255).astype(np.uint8)
    cell_w, cell_h = width / GRID_COLUMNS, height / GRID_ROWS
    for row in range(GRID_ROWS):
        for column in range(GRID_COLUMNS):
            _draw_cell(scene, rng, column * cell_w, row * cell_h, cell_w, cell_h, row, column)
    return scene


def _draw_cell(
    scene: U8Array,
    rng: np.random.Generator,
    x: float,
    y: float,
    w: float,
    h: float,
    row: int,
    column: int,
) -> None:
    """One grid cell's large unique features: a random shape and the cell's own label."""
    colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    centre = (int(x + w * rng.uniform(0.3, 0.7)), int(y + h * rng.uniform(0.3, 0.7)))
    size = int(min(w, h) * rng.uniform(0.2, 0.35))
    shape = int(rng.integers(0, 3))
    if shape == 0:
        cv2.circle(scene, centre, size, colour, -1, cv2.LINE_AA)
    elif shape == 1:
        corner = (centre[0] - size, centre[1] - size // 2)
        cv2.rectangle(scene, corner, (centre[0] + size, centre[1] + size // 2), colour, -1)
    else:
        points = np.array(
            [(centre[0], centre[1] - size), (centre[0] - size, centre[1] + size),
             (centre[0] + size, centre[1] + size)],
            np.int32,
        )  # fmt: skip
        cv2.fillPoly(scene, [points], colour, cv2.LINE_AA)
    label = f"{chr(ord('A') + row)}{column + 1}"
    scale = min(w, h) / 85
    origin = (int(x + w * 0.06), int(y + h * 0.3))
    cv2.putText(scene, label, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 7, cv2.LINE_AA)
    cv2.putText(
        scene, label, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 3, cv2.LINE_AA
    )
    cv2.rectangle(scene, (int(x), int(y)), (int(x + w), int(y + h)), (40, 40, 40), 2)


def _clamp(value: float, low: float, high: float) -> float:
    if not np.isfinite(value):
        raise ValueError(f"not a finite number: {value!r}")
    return min(high, max(low, float(value)))


def _even(value: float) -> int:
    return 2 * round(value / 2)
