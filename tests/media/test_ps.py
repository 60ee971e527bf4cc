"""The program stream demuxer against FFmpeg's, on real PS files and on broken ones.

H.264 files are made by GStreamer's mpegpsmux, H.265 ones (mpegpsmux in GStreamer 1.22 takes
H.264 only) by the simulator's own muxer (simulator/ps_mux.py), the faults by
tests/media/ps_material.py from that muxer's packs; FFmpeg must read them all.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import pytest

from surveillance.media.ps import AccessUnit, PsDemuxer
from surveillance.simulator import ClipSpec, ensure_clip
from surveillance.simulator.ps_mux import (
    CLIPS,
    STREAM_TYPE_H264,
    STREAM_TYPE_HEVC,
    ClipUnit,
    clip_units,
    ensure_ps,
    ps_file,
)
from tests.conftest import CLIP_CACHE, FULL_HD, H265, HIGH_BFRAMES, SMALL_H264
from tests.media.ps_material import ffmpeg_units, write_ps


def demux(data: bytes, cut: int = 1400, demuxer: PsDemuxer | None = None) -> list[AccessUnit]:
    """``data`` fed in payloads of ``cut`` bytes, as RTP brings it."""
    demuxer = demuxer or PsDemuxer()
    units: list[AccessUnit] = []
    for start in range(0, len(data), cut):
        units += demuxer.feed(data[start : start + cut])
    return units


def same(units: Iterable[AccessUnit], expected: Iterable[ClipUnit]) -> bool:
    """Whether the units are the expected ones, byte for byte, with the same timestamps and
    keyframes. The demuxer holds the last unit back until the next starts: compared up to it."""
    got = [(u.data, u.pts, u.dts, u.keyframe) for u in units]
    want = [(u.data, u.pts, u.dts, u.keyframe) for u in expected]
    return len(got) == len(want) - 1 and got == want[: len(got)]


def units_of(spec: ClipSpec) -> list[ClipUnit]:
    return clip_units(ensure_clip(spec, CLIP_CACHE))[1]


@pytest.mark.integration  # runs gst-launch-1.0
@pytest.mark.parametrize(
    "spec", [SMALL_H264, HIGH_BFRAMES, FULL_HD], ids=["main", "bframes", "1080p"]
)
def test_mpegpsmux_files_demux_as_ffmpeg_reads_them(spec: ClipSpec) -> None:
    path = ensure_ps(spec, CLIP_CACHE)  # H.264: mpegpsmux
    codec, expected = ffmpeg_units(path)
    assert codec == "h264"
    data = path.read_bytes()
    demuxer = PsDemuxer()
    units = demux(data, demuxer=demuxer)
    assert same(units, expected), "units differ from FFmpeg's"
    assert demuxer.codec == "h264" and demuxer.stream_type == STREAM_TYPE_H264
    assert demuxer.errors == 0
    assert sum(u.keyframe for u in units) == sum(u.keyframe for u in expected[:-1]) >= 1
    assert {u.codec for u in units} == {"h264"}
    # Byte by byte: every structure cut at every position, across the whole file.
    if spec is SMALL_H264:
        assert same(demux(data, cut=1), expected)


@pytest.mark.parametrize("pes_max, repeat_pts", [(65_000, False), (3000, False), (3000, True)])
def test_h265_ps_with_stream_type_0x24_reads_as_hevc_in_ffmpeg_and_here(
    tmp_path: Path, pes_max: int, repeat_pts: bool
) -> None:
    """Units split over several PES, with the PTS on the first only or on each (mpegpsmux)."""
    source = units_of(H265)
    path = tmp_path / "h265.ps"
    path.write_bytes(write_ps(source, STREAM_TYPE_HEVC, pes_max=pes_max, repeat_pts=repeat_pts))
    codec, expected = ffmpeg_units(path)
    assert codec == "hevc"
    assert [(u.pts, u.keyframe) for u in expected] == [(u.pts, u.keyframe) for u in source]
    demuxer = PsDemuxer()
    units = demux(path.read_bytes(), cut=977, demuxer=demuxer)
    assert same(units, expected)
    assert demuxer.codec == "hevc" and demuxer.errors == 0
    assert units[0].keyframe and {u.codec for u in units} == {"hevc"}


@pytest.mark.parametrize("spec, codec", [(SMALL_H264, "h264"), (H265, "hevc")])
def test_without_a_psm_the_codec_is_sniffed_from_nal_headers(spec: ClipSpec, codec: str) -> None:
    source = units_of(spec)
    demuxer = PsDemuxer()
    units = demux(write_ps(source, stream_type=None), demuxer=demuxer)
    assert demuxer.stream_type is None and demuxer.codec == codec
    assert same(units, source) and {u.codec for u in units} == {codec}


def test_a_psm_changing_the_codec_changes_the_units_codec() -> None:
    h264, hevc = units_of(SMALL_H264)[:30], units_of(H265)[:30]
    data = write_ps(h264, STREAM_TYPE_H264) + write_ps(hevc, STREAM_TYPE_HEVC, pts_offset=400_000)
    demuxer = PsDemuxer()
    units = demux(data, demuxer=demuxer)
    assert [u.codec for u in units] == ["h264"] * 30 + ["hevc"] * 29
    assert units[30].keyframe and units[30].data == hevc[0].data
    assert demuxer.codec == "hevc" and demuxer.errors == 0


def test_every_cut_of_the_structures_gives_the_same_units() -> None:
    """Pack header, PSM and PES headers cut at every byte position between two payloads."""
    # The units' first bytes (their NAL headers) are enough here: the structures are the point.
    keyed = [replace(u, data=u.data[:300]) for u in units_of(SMALL_H264)[:4]]
    assert keyed[0].keyframe  # a PSM first
    data = write_ps(keyed, STREAM_TYPE_H264, pes_max=200)
    expected = [(u.data, u.pts) for u in keyed[:-1]]
    for cut in range(1, len(data)):
        demuxer = PsDemuxer()
        units = demuxer.feed(data[:cut]) + demuxer.feed(data[cut:])
        assert [(u.data, u.pts) for u in units] == expected, f"cut at {cut}"
        assert demuxer.errors == 0


def test_garbage_between_packs_is_skipped_and_counted() -> None:
    source = units_of(SMALL_H264)
    rng = random.Random(14)
    chunks = []
    for unit in source:
        chunks.append(write_ps([unit], STREAM_TYPE_H264))
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
        chunks.append(junk.replace(b"\x00\x00", b"\x00\x07"))  # no start code in it
    demuxer = PsDemuxer()
    units = demux(b"".join(chunks), demuxer=demuxer)
    assert same(units, source)
    assert demuxer.errors == len(source)  # each run of junk, once


def test_a_truncated_unit_is_lost_and_the_rest_recovered() -> None:
    source = units_of(SMALL_H264)
    packs = [write_ps([unit], STREAM_TYPE_H264) for unit in source]
    damaged = 10
    packs[damaged] = packs[damaged][: len(packs[damaged]) // 2]  # the PES says more is coming
    demuxer = PsDemuxer()
    units = demux(b"".join(packs), demuxer=demuxer)
    by_pts = {u.pts: u for u in units}
    assert demuxer.errors >= 1
    # What the cut unit swallowed of the next is gone; everything after is whole.
    assert (
        source[damaged].pts not in by_pts
        or by_pts[source[damaged].pts].data != source[damaged].data
    )
    after = [(u.data, u.pts, u.keyframe) for u in units if (u.pts or 0) > source[damaged + 1].pts]
    assert after == [(u.data, u.pts, u.keyframe) for u in source[damaged + 2 : -1]]


def test_a_unit_over_the_maximum_is_dropped_and_counted() -> None:
    source = units_of(SMALL_H264)
    limit = 10_000
    assert any(len(u.data) > limit for u in source)
    demuxer = PsDemuxer(max_unit_bytes=limit)
    units = demux(write_ps(source, STREAM_TYPE_H264, pes_max=3000), demuxer=demuxer)
    small = [u for u in source[:-1] if len(u.data) <= limit]
    assert [(u.data, u.pts) for u in units] == [(u.data, u.pts) for u in small]
    assert demuxer.errors == sum(len(u.data) > limit for u in source[:-1])


def test_after_a_loss_the_damaged_units_are_dropped_and_the_next_ones_come_whole() -> None:
    source = units_of(SMALL_H264)
    packs = [write_ps([unit], STREAM_TYPE_H264) for unit in source]
    data = b"".join(packs)
    payloads = [data[start : start + 1400] for start in range(0, len(data), 1400)]
    lost = {3, 40, 41}  # in the first keyframe; across several small units
    demuxer = PsDemuxer()
    units: list[AccessUnit] = []
    for index, payload in enumerate(payloads):
        if index in lost:
            demuxer.lost()  # as the worker does for a packet the reorderer gave up
            continue
        units += demuxer.feed(payload)
    # Whole: each unit whose pack lost nothing (the last held back, as always).
    whole, start = [], 0
    for unit, pack in zip(source, packs, strict=True):
        touched = range(start // 1400, (start + len(pack) - 1) // 1400 + 1)
        if not lost.intersection(touched):
            whole.append((unit.data, unit.pts))
        start += len(pack)
    assert [(u.data, u.pts) for u in units] == whole[:-1]
    assert len(whole) <= len(source) - 6  # the test loses what it means to


def test_timestamps_carry_on_past_the_33_bit_wrap() -> None:
    source = units_of(SMALL_H264)
    offset = (1 << 33) - 2 * 90_000  # wraps two seconds in
    units = demux(write_ps(source, STREAM_TYPE_H264, pts_offset=offset))
    assert [u.pts for u in units] == [u.pts + offset for u in source[:-1]]
    assert units[-1].pts is not None and units[-1].pts > 1 << 33


def test_an_unsupported_video_stream_type_gives_no_units() -> None:
    demuxer = PsDemuxer()
    units = demux(write_ps(units_of(SMALL_H264), stream_type=0x10), demuxer=demuxer)
    assert units == [] and demuxer.codec is None and demuxer.stream_type == 0x10


@pytest.mark.integration  # the H.264 ones run gst-launch-1.0
@pytest.mark.parametrize("clip", sorted(CLIPS))
def test_the_gb_simulators_ps_files_demux_as_ffmpeg_reads_them(clip: str) -> None:
    """What the GB platform simulator sends (simulator/ps_mux.py: mpegpsmux for H.264, its
    own muxer for H.265, large units split over PES with the PTS on the first only)."""
    path = ps_file(clip, CLIP_CACHE)
    codec, expected = ffmpeg_units(path)
    demuxer = PsDemuxer()
    units = demux(path.read_bytes(), demuxer=demuxer)
    assert same(units, expected) and demuxer.errors == 0
    assert demuxer.codec == codec == ("hevc" if CLIPS[clip].codec == "h265" else "h264")
    assert units[0].keyframe
