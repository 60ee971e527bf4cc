"""Generated clips: codec, profile, size, GOP, B-frames, and the frame number read back."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest

from surveillance.simulator.clips import ClipSpec, ensure_clip, read_frame_number

SMALL = ClipSpec(width=320, height=240, fps=25, bitrate_kbps=400, gop_s=1.0, seconds=2.0)


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.mark.parametrize(
    ("spec", "codec_name", "profile", "b_frames"),
    [
        (replace(SMALL, profile="baseline", bframes=2), "h264", "Constrained Baseline", False),
        (replace(SMALL, profile="main"), "h264", "Main", False),
        (replace(SMALL, profile="main", bframes=2), "h264", "Main", True),
        (replace(SMALL, profile="high"), "h264", "High", False),
        (replace(SMALL, profile="high", bframes=3), "h264", "High", True),
        (replace(SMALL, codec="h265"), "hevc", "Main", False),
        (replace(SMALL, codec="h265", bframes=2), "hevc", "Main", True),
    ],
    ids=["baseline", "main", "main-bframes", "high", "high-bframes", "h265", "h265-bframes"],
)
def test_clip_has_requested_format(
    clip_dir: Path, spec: ClipSpec, codec_name: str, profile: str, b_frames: bool
) -> None:
    path = ensure_clip(spec, clip_dir)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == codec_name
        assert stream.codec_context.profile == profile
        assert (stream.codec_context.width, stream.codec_context.height) == (320, 240)
        packets = [p for p in container.demux(stream) if p.size]
    assert len(packets) == spec.frame_count
    # Fixed GOP, no scene-cut keyframes: exactly every fps * gop_s frames, in decode order.
    keyframes = [i for i, p in enumerate(packets) if p.is_keyframe]
    assert keyframes == list(range(0, spec.frame_count, spec.gop_frames))
    reordered = any(p.pts != p.dts for p in packets)
    assert reordered is b_frames
    bitrate_kbps = sum(p.size for p in packets) * 8 / spec.seconds / 1000
    assert bitrate_kbps > spec.bitrate_kbps * 0.5, "the picture is too easy to compress"


def test_frame_number_round_trips_through_the_codec(clip_dir: Path) -> None:
    spec = replace(SMALL, profile="main", bframes=2)
    with av.open(str(ensure_clip(spec, clip_dir))) as container:
        numbers = [
            read_frame_number(f.to_ndarray(format="bgr24")) for f in container.decode(video=0)
        ]
    assert numbers == list(range(spec.frame_count))


def test_frame_number_is_none_on_a_foreign_picture() -> None:
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, size=(240, 320, 3), dtype=np.uint8)
    assert read_frame_number(noise) is None
    assert read_frame_number(np.zeros((240, 320, 3), dtype=np.uint8)) is None


def test_ensure_clip_writes_once_under_a_stable_name(clip_dir: Path) -> None:
    spec = SMALL
    assert spec.key() == replace(SMALL).key()
    assert spec.key() != replace(SMALL, bitrate_kbps=500).key()
    first = ensure_clip(spec, clip_dir)
    mtime = first.stat().st_mtime_ns
    assert ensure_clip(spec, clip_dir) == first
    assert first.stat().st_mtime_ns == mtime
    assert not list(clip_dir.glob(".*tmp*")), "a temporary file was left behind"
