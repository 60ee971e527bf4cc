"""The simulator's PS files: FFmpeg (PyAV's "mpeg" demuxer) reads them back frame for frame."""

from __future__ import annotations

import io
import itertools
import struct
from pathlib import Path

import av
import pytest

from surveillance.simulator.ps_mux import CLIPS, crc32_mpeg, pack, pes, program_stream_map, ps_file
from surveillance.simulator.ps_units import load_clip
from tests.conftest import CLIP_CACHE


@pytest.mark.parametrize(("clip", "codec"), [("h264", "h264"), ("h265", "hevc")])
def test_ps_file_demuxes_and_decodes_every_frame(clip: str, codec: str) -> None:
    path = ps_file(clip, CLIP_CACHE)
    assert path == ps_file(clip, CLIP_CACHE), "made once, then cached"
    data = path.read_bytes()
    assert data.startswith(b"\x00\x00\x01\xba"), "a PS file starts with a pack header"
    stream_type = {"h264": 0x1B, "hevc": 0x24}[codec]
    psm = data.index(b"\x00\x00\x01\xbc")
    assert data[psm + 12] == stream_type, "the PSM names the codec (ITU-T H.222.0 Table 2-34)"
    frames, keyframes, pts = _decode(path)
    spec = CLIPS[clip]
    assert (frames, keyframes) == (spec.frame_count, spec.frame_count // spec.gop_frames)
    steps = {b - a for a, b in itertools.pairwise(pts)}
    assert steps == {90_000 // spec.fps}, "PES timestamps on a 90 kHz clock, one frame apart"


def _decode(path: Path) -> tuple[int, int, list[int]]:
    with av.open(str(path), format="mpeg") as container:
        stream = container.streams.video[0]
        name = stream.codec_context.name
        pts = [p.pts for p in container.demux(stream) if p.size and p.pts is not None]
    with av.open(str(path), format="mpeg") as container:
        frames = list(container.decode(video=0))
    assert name in ("h264", "hevc")
    keyframes = sum(f.key_frame for f in frames)
    assert all((f.width, f.height) == (640, 360) for f in frames)
    return len(frames), keyframes, sorted(pts)


def test_psm_crc_and_long_units_split_into_pes_packets() -> None:
    psm = program_stream_map(0x24)
    # A section with its CRC appended has a CRC of zero (ISO/IEC 13818-1 Annex A).
    assert crc32_mpeg(psm) == 0
    unit = pack(b"\x00\x00\x00\x01\x26" + b"\x55" * 140_000, pts=7200, dts=3600, keyframe=True)
    assert unit.count(b"\x00\x00\x01\xe0") == 3, "PES_packet_length is 16 bits: 3 packets"
    assert unit.count(b"\x00\x00\x01\xbc") == 1, "a keyframe carries the PSM"
    first = unit.index(b"\x00\x00\x01\xe0")
    assert unit[first + 7] == 0xC0, "PTS and DTS differ: both are written"
    with pytest.raises(struct.error):
        pes(b"\x00" * 70_000, pts=1, dts=1)


@pytest.mark.parametrize("clip", ["h264", "h265"])
def test_units_loop_with_time_running_on(clip: str) -> None:
    """The sender's view: one unit per frame, first a keyframe; a second lap of the loop has
    every PES timestamp (and pack SCR) one clip length later, so FFmpeg sees time go on."""
    path = ps_file(clip, CLIP_CACHE)
    loop = load_clip(path)
    spec = CLIPS[clip]
    assert len(loop.units) == spec.frame_count and loop.period_90k == 90_000 * spec.seconds
    assert b"".join(u.data for u in loop.units) == path.read_bytes(), "every byte, in order"
    two_laps = b"".join(u.data for u in loop.units) + b"".join(
        u.shifted(loop.period_90k) for u in loop.units
    )
    with av.open(io.BytesIO(two_laps), format="mpeg", mode="r") as container:
        pts = [p.pts for p in container.demux(video=0) if p.size and p.pts is not None]
    assert len(pts) == 2 * spec.frame_count
    assert pts[spec.frame_count] - pts[0] == loop.period_90k
    bare = load_clip(path, without_psm=True)
    data = b"".join(u.data for u in bare.units)
    assert b"\x00\x00\x01\xbc" not in data and b"\x00\x00\x01\xbb" not in data
    assert len(bare.units) == len(loop.units)
