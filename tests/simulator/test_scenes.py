"""Scenes: each fault looks like what it names from its event on, and the plain pan keeps the
clip names cached before scenes existed."""

from __future__ import annotations

import numpy as np
import pytest

from surveillance.simulator.clips import ClipError, ClipSpec
from surveillance.simulator.scenes import FAULT_SCENES, SceneGeometry, pictures

GEOMETRY = SceneGeometry(width=160, height=96, frame_count=20, fps=10, event_at_s=1.0)


def _luma_chroma(scene: str) -> list[tuple[np.ndarray, np.ndarray, int | None]]:
    h = GEOMETRY.height
    return [
        (yuv[:h].astype(np.float32), yuv[h:].astype(np.float32), number)
        for yuv, number in (
            (picture.copy(), number) for picture, number in pictures(scene, GEOMETRY)
        )
    ]


def test_the_plain_pan_keeps_its_cached_name_and_a_scene_changes_it() -> None:
    pan = ClipSpec(width=640, height=360, seconds=4.0)
    assert pan.key() == "h264-high-640x360-25fps-2000k-gop2s-bf0-4s-v2"  # names before scenes
    frozen = ClipSpec(width=640, height=360, seconds=4.0, scene="frozen", event_at_s=1.5)
    assert frozen.key() == "h264-high-640x360-25fps-2000k-gop2s-bf0-4s-frozen-at1p5s-v2"
    with pytest.raises(ClipError, match="unknown scene 'snow'"):
        ClipSpec(scene="snow")
    with pytest.raises(ClipError, match="event_at_s"):
        ClipSpec(seconds=4.0, scene="black", event_at_s=5.0)


def test_each_fault_scene_shows_its_fault_from_the_event_on() -> None:
    before, after = GEOMETRY.event_frame - 1, GEOMETRY.event_frame + 3
    pan = _luma_chroma("pan")
    for scene in FAULT_SCENES:
        frames = _luma_chroma(scene)
        assert len(frames) == GEOMETRY.frame_count
        # The ordinary picture before the event (turned is a still view of it: no pan).
        assert frames[before][0].std() > 30, scene
        luma, chroma, number = frames[after]
        if scene == "frozen":
            assert np.array_equal(frames[after][0], frames[-1][0])
            assert frames[after][2] == frames[-1][2] == GEOMETRY.event_frame
        elif scene == "black":
            assert luma.mean() < 20 and luma.std() < 2 and number is None
        elif scene == "covered":
            assert 40 < luma.mean() < 70 and luma.std() < 6 and number is None
        elif scene == "sprayed":
            u, v = np.split(chroma, 2)
            assert u.std() < 1 and v.std() < 1 and np.hypot(u.mean() - 128, v.mean() - 128) > 20
            assert luma.std() < 8 and number is None
        elif scene == "defocus":
            sharp = np.abs(np.diff(pan[after][0], axis=1)).mean()
            assert np.abs(np.diff(luma, axis=1)).mean() < sharp / 4
        elif scene == "turned":
            still = frames[before][0]
            assert np.abs(luma - still).mean() > 20 and number == after
