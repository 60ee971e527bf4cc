"""Where a simulated PTZ camera's view lies in its scene, and how a moved view is told apart
(simulator/ptz_scene.py, simulator/picture_change.py): in-process, no server."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from surveillance.simulator import MountSpec, SimulatorError
from surveillance.simulator.picture_change import (
    LIVE_CORNER_FRACTION,
    MOVED_THRESHOLD,
    difference,
    moved,
)
from surveillance.simulator.ptz_scene import (
    MAX_MAGNIFICATION,
    expected_view,
    make_scene,
    scene_size,
    view_crop,
    write_scene,
)

SCENE = (2560, 1440)
OUT = (640, 360)


def test_views_aim_like_a_camera_and_stay_inside_the_scene() -> None:
    home = view_crop(SCENE, OUT, 0, 0, 0)
    # The widest view: half the scene each way, centred.
    assert (home.left, home.top, home.width, home.height) == (640, 360, 1280, 720)
    assert home.borders(SCENE) == {"left": 640, "top": 360, "right": 640, "bottom": 360}
    right, up = view_crop(SCENE, OUT, 1, 0, 0), view_crop(SCENE, OUT, 0, 1, 0)
    assert (right.left, right.left + right.width) == (1280, 2560)  # pan right: right part
    assert (up.top, up.height) == (0, 720)  # tilt up: the upper part
    assert view_crop(SCENE, OUT, -1, -1, 0).borders(SCENE)["bottom"] == 0
    zoomed = view_crop(SCENE, OUT, 0, 0, 1)
    assert zoomed.width == home.width / MAX_MAGNIFICATION
    # Zoom keeps the aim: same centre.
    assert zoomed.left + zoomed.width / 2 == home.left + home.width / 2
    # Out of range is clamped (end stops); every window is even, inside, of the output's shape.
    assert view_crop(SCENE, OUT, 7, -3, 2) == view_crop(SCENE, OUT, 1, -1, 1)
    for pan, tilt, zoom in [(0.33, -0.71, 0.13), (-1, 1, 0.9), (0.05, 0.05, 0.5)]:
        crop = view_crop(SCENE, (320, 180), pan, tilt, zoom)
        assert all(v % 2 == 0 for v in (crop.left, crop.top, crop.width, crop.height))
        assert min(crop.borders(SCENE).values()) >= 0
        assert abs(crop.width / crop.height - 16 / 9) < 0.02
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError, match="finite"):
            view_crop(SCENE, OUT, bad, 0, 0)


def test_the_scene_tells_views_apart_and_a_still_view_from_a_moved_one(tmp_path: Path) -> None:
    path = write_scene(tmp_path / "scene.png", 1280, 720, seed=5)
    assert scene_size(path) == (1280, 720)
    scene = make_scene(1280, 720, seed=5)
    assert np.array_equal(scene, make_scene(1280, 720, seed=5))  # the same seed, the same
    assert not np.array_equal(scene, make_scene(1280, 720, seed=6))
    view = expected_view(scene, OUT, 0.3, 0.1, 0.2)
    assert view.shape == (360, 640, 3)
    assert difference(view, view) == 0.0 and not moved(view, view)
    # A pan or tilt step of 0.1 anywhere, at any zoom: a clear move.
    for pan, tilt, zoom in [(0, 0, 0), (-0.9, 0.8, 0), (0.5, -0.5, 1)]:
        here = expected_view(scene, OUT, pan, tilt, zoom)
        for step in [(0.1, 0, 0), (0, 0.1, 0)]:
            there = expected_view(scene, OUT, pan - step[0], tilt - step[1], zoom)
            assert difference(here, there) > 2 * MOVED_THRESHOLD
    # Size and colour do not matter: a grey, smaller picture of the same view is the same.
    grey = cv2.resize(
        cv2.cvtColor(view, cv2.COLOR_BGR2GRAY), (320, 180), interpolation=cv2.INTER_AREA
    )
    assert difference(view, grey) < 1.0
    # The corner where the simulator's live mark wanders is left out, and only it: the
    # mark (height/6 + a height/36 margin, gst_ptz_mount) fits inside it.
    assert 1 / 6 + 1 / 36 < LIVE_CORNER_FRACTION < 0.3
    side = math.ceil(360 * (1 / 6 + 1 / 36))
    dark, light = view.copy(), view.copy()
    dark[-side:, -side:], light[-side:, -side:] = 0, 255
    assert difference(dark, light) == 0.0
    dark[-side:, -2 * side : -side], light[-side:, -2 * side : -side] = 0, 255
    assert difference(dark, light) > 4.0  # 2% of the picture, black against white
    with pytest.raises(ValueError, match="PNG"):
        scene_size(Path(__file__))
    with pytest.raises(ValueError, match="even"):
        write_scene(tmp_path / "odd.png", 641, 360)


def test_a_mount_has_a_clip_or_a_ptz_scene(tmp_path: Path) -> None:
    scene = tmp_path / "scene.png"
    assert MountSpec("ptz", ptz_scene=scene).ptz_size == (640, 360)
    with pytest.raises(SimulatorError, match="either a clip or a ptz_scene"):
        MountSpec("nothing")
    with pytest.raises(SimulatorError, match="either a clip or a ptz_scene"):
        MountSpec("both", Path("clip.mp4"), ptz_scene=scene)
    with pytest.raises(SimulatorError, match="ptz_size"):
        MountSpec("odd", ptz_scene=scene, ptz_size=(641, 360))
    with pytest.raises(SimulatorError, match="ptz_fps"):
        MountSpec("fast", ptz_scene=scene, ptz_fps=0)
