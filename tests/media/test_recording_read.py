"""Reading recorded segments: exports across segment boundaries and gaps, the picture at a
moment, playback windows for Media Source Extensions; real camera packets, real files, the
simulator's frame numbers to tell which picture came out."""

from __future__ import annotations

import io
import itertools
import random
import subprocess
from collections.abc import Sequence
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from surveillance.media.packets import Packet
from surveillance.media.recording_file import SegmentWriter
from surveillance.media.recording_read import (
    RecordingUnavailable,
    SegmentFileMissing,
    SegmentRef,
    export_mp4,
    frame_at,
    playback_fmp4,
)
from surveillance.simulator import Simulator, read_frame_number
from tests.media.camera_packets import decoded_frames, frame_numbers_follow, packets_of

T0 = 1_790_000_000.0  # the first segment's wall time
FRAME_S = 0.04


def ref_of(path: Path, start_at: float, writer: SegmentWriter, close: bool = True) -> SegmentRef:
    facts = writer.close() if close else writer.progress()
    return SegmentRef(
        path, start_at, facts.duration_s, tuple(facts.keyframes), facts.init_bytes, facts.codec
    )


def record(
    tmp_path: Path, packets: list[Packet], gap_s: float = 0.0, split_gops: Sequence[int] = (2,)
) -> tuple[list[SegmentRef], list[tuple[float, int | None]]]:
    """Segments split at those keyframes (two by default), each starting ``gap_s`` after
    the one before ends (as a recorder dates them); and every picture as (wall time, frame
    number)."""
    keyframes = [i for i, p in enumerate(packets) if p.keyframe]
    bounds = [0, *(keyframes[g] for g in split_gops), len(packets)]
    refs: list[SegmentRef] = []
    pictures: list[tuple[float, int | None]] = []
    start_at = T0
    for index, part in enumerate(packets[a:b] for a, b in itertools.pairwise(bounds)):
        path = tmp_path / f"segment-{index}.mp4"
        writer = SegmentWriter(path, part[0])
        for packet in part[1:]:
            writer.add(packet)
        ref = ref_of(path, start_at, writer)
        refs.append(ref)
        pictures += [(start_at + t, n) for t, n in decoded_frames(path.read_bytes())]
        start_at = ref.end_at + gap_s
    return refs, pictures


def frames_of_file(path: Path) -> list[tuple[float, int | None]]:
    return decoded_frames(path.read_bytes())


@pytest.mark.parametrize("mount", ["bframes", "h265"])
def test_an_export_starts_at_the_keyframe_before_and_crosses_segments(
    simulator: Simulator, tmp_path: Path, mount: str
) -> None:
    refs, pictures = record(tmp_path, packets_of(simulator)[mount])
    first = refs[0]
    start_at = first.start_at + first.keyframes[1][0] + 0.3  # inside the second GOP
    end_at = refs[1].start_at + 1.5
    out = tmp_path / "export.mp4"
    facts = export_mp4(refs, start_at, end_at, out)

    keyframe_at = first.start_at + first.keyframes[1][0]
    assert facts.first_at == pytest.approx(keyframe_at, abs=1e-3)
    expected = [(t, n) for t, n in pictures if keyframe_at - 1e-3 <= t < end_at]
    exported = frames_of_file(out)
    assert [n for _, n in exported][: len(expected)] == [n for _, n in expected]
    assert len(exported) - len(expected) <= 2  # frames decoded before end_at, shown after
    assert frame_numbers_follow([n for _, n in exported])  # nothing lost at the boundary
    for (t, _), (wall, _) in zip(exported, expected, strict=False):
        assert facts.first_at + t == pytest.approx(wall, abs=2e-3)
    assert facts.frames == len(exported)
    assert facts.duration_s == pytest.approx(len(exported) * FRAME_S, abs=0.01)
    assert (facts.codec, facts.width, facts.height, facts.note) == (first.codec, 640, 360, None)
    data = out.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")  # faststart: players start at once
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v",
         "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(out)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert probe.stdout.strip() == str(len(exported)) and not probe.stderr


def test_a_gap_stays_a_gap_and_a_change_of_video_ends_the_export(
    simulator: Simulator, tmp_path: Path
) -> None:
    packets = packets_of(simulator)
    refs, pictures = record(tmp_path, packets["cam00"], gap_s=3.0)
    out = tmp_path / "gap.mp4"
    facts = export_mp4(refs, T0, refs[1].end_at, out)
    exported = frames_of_file(out)
    assert [n for _, n in exported] == [n for _, n in pictures]
    jumps = [b[0] - a[0] for a, b in itertools.pairwise(exported)]
    assert max(jumps) == pytest.approx(3.0 + FRAME_S, abs=2e-3)  # real time, held picture
    assert facts.duration_s == pytest.approx(refs[1].end_at - T0, abs=2e-3)
    assert facts.note is not None and "kept as a gap" in facts.note and "(3.0 s" in facts.note

    other = tmp_path / "h265"
    other.mkdir()
    h265, _ = record(other, packets["h265"])
    moved = SegmentRef(
        h265[0].path, refs[0].end_at, h265[0].duration_s, h265[0].keyframes,
        h265[0].init_bytes, h265[0].codec,
    )  # fmt: skip
    facts = export_mp4([refs[0], moved], T0, moved.end_at, tmp_path / "change.mp4")
    assert facts.codec == "h264" and facts.frames == len(frames_of_file(refs[0].path))
    assert facts.note is not None and "changed to hevc 640x360" in facts.note

    late = export_mp4(refs, T0 - 5.0, T0 + 1.0, tmp_path / "late.mp4")
    assert late.note is not None and late.note.startswith("starts 5.0 s late")
    missing = tmp_path / "missing.mp4"
    with pytest.raises(RecordingUnavailable) as raised:
        export_mp4(refs, T0 - 60.0, T0 - 30.0, missing)
    assert raised.value.status_code == 404 and "nothing recorded" in str(raised.value)
    assert not missing.exists()


def test_frame_at_is_the_picture_shown_at_that_moment(simulator: Simulator, tmp_path: Path) -> None:
    refs, pictures = record(tmp_path, packets_of(simulator)["bframes"], gap_s=2.0)
    moments = [pictures[0][0], refs[1].start_at + refs[1].keyframes[0][0], pictures[-1][0]]
    moments += random.Random(7).sample([t + 0.013 for t, _ in pictures], 6)
    for at in moments:
        jpeg, width, height, shown_at = frame_at(refs, at)
        wall, number = max((p for p in pictures if p[0] <= at + 1e-6), key=lambda p: p[0])
        picture = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert (width, height) == (640, 360) == (picture.shape[1], picture.shape[0])
        assert read_frame_number(picture) == number
        assert shown_at == pytest.approx(wall, abs=1e-3)
    with pytest.raises(RecordingUnavailable):
        frame_at(refs, refs[0].end_at + 1.0)  # in the gap
    # Segments that touch: the pictures around the boundary are each segment's own.
    (tmp_path / "touching").mkdir()
    touching, pictures = record(tmp_path / "touching", packets_of(simulator)["bframes"])
    boundary = touching[1].start_at
    for at in (boundary - 0.03, boundary + 0.02, boundary + 0.05, boundary + 0.09):
        jpeg, _, _, shown_at = frame_at(touching, at)
        wall, number = max((p for p in pictures if p[0] <= at + 1e-6), key=lambda p: p[0])
        picture = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert (read_frame_number(picture), shown_at) == (number, pytest.approx(wall, abs=1e-3))
    with pytest.raises(RecordingUnavailable):
        frame_at(refs, T0 - 1.0)


@pytest.mark.parametrize(
    ("mount", "codecs"),
    [("cam00", "avc1.4d401e"), ("sdp-only", "avc1.4d401e"), ("h265", "hev1.1.6.L63.90")],
)
def test_a_playback_window_plays_from_the_files_own_fragments(
    simulator: Simulator, tmp_path: Path, mount: str, codecs: str
) -> None:
    refs, pictures = record(tmp_path, packets_of(simulator)[mount], gap_s=0.02)
    start_at = refs[0].start_at + refs[0].keyframes[1][0] + 0.5
    window = playback_fmp4(refs, start_at, refs[1].end_at)
    assert window.mime == f'video/mp4; codecs="{codecs}"'
    keyframe_at = refs[0].start_at + refs[0].keyframes[1][0]
    assert window.first_at == pytest.approx(keyframe_at, abs=1e-3)
    assert window.end_at == pytest.approx(refs[1].end_at, abs=0.05)  # the 0.02 s closed up
    assert window.data[4:8] == b"ftyp"
    played = decoded_frames(window.data)
    expected = [n for t, n in pictures if t >= keyframe_at - 1e-3]
    assert [n for _, n in played] == expected
    assert played[0][0] == pytest.approx(0.0, abs=1e-3)
    times = [t for t, _ in played]
    assert all(0 < b - a < FRAME_S + 1e-3 for a, b in itertools.pairwise(times))


def test_an_open_segment_reads_as_its_whole_fragments(simulator: Simulator, tmp_path: Path) -> None:
    packets = packets_of(simulator)["cam00"]
    path = tmp_path / "open.mp4"
    writer = SegmentWriter(path, packets[0])
    for packet in packets[1:80]:
        writer.add(packet)
    with path.open("ab") as file:  # a fragment half written when the reader looks
        file.write(b"\x00\x00\x10\x00moof" + bytes(100))
    ref = ref_of(path, T0, writer, close=False)
    window = playback_fmp4([ref], T0, T0 + 60)
    played = decoded_frames(window.data)
    assert len(played) == writer.progress().frames == 75
    out = tmp_path / "open-export.mp4"
    facts = export_mp4([ref], T0, T0 + 60, out)
    assert facts.frames == 75
    assert facts.note is not None and "early" in facts.note
    with av.open(io.BytesIO(out.read_bytes())) as container:
        assert container.streams.video[0].frames == 75
    writer.abort()


def packet_dts(path: Path) -> list[float]:
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "packet=dts_time",
         "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [float(line) for line in probe.stdout.split()]


def test_a_missing_segment_file_is_a_gap_for_every_reader(
    simulator: Simulator, tmp_path: Path
) -> None:
    refs, pictures = record(tmp_path, packets_of(simulator)["cam00"], split_gops=(1, 3))
    lost = refs[1]
    lost.path.unlink()  # deleted by hand: the index still holds it
    kept = [(t, n) for t, n in pictures if not lost.start_at - 1e-3 <= t < lost.end_at - 1e-3]

    out = tmp_path / "around.mp4"
    facts = export_mp4(refs, T0, refs[2].end_at, out)
    exported = frames_of_file(out)
    assert [n for _, n in exported] == [n for _, n in kept]
    for (t, _), (wall, _) in zip(exported, kept, strict=True):
        assert facts.first_at + t == pytest.approx(wall, abs=2e-3)  # the gap kept as time
    assert facts.note is not None and "segment file missing" in facts.note
    assert facts.note.count("no recording from") == 1  # one note for the one gap

    window = playback_fmp4(refs, T0, refs[2].end_at)
    played = decoded_frames(window.data)
    assert [n for _, n in played] == [n for _, n in kept]
    jump = max(b[0] - a[0] for a, b in itertools.pairwise(played))
    assert jump == pytest.approx(lost.duration_s + FRAME_S, abs=2e-3)  # a gap the page jumps

    inside = (lost.start_at + 0.2, lost.end_at - 0.2)
    nothing = tmp_path / "nothing.mp4"
    for read in (
        lambda: export_mp4(refs, *inside, nothing),
        lambda: playback_fmp4(refs, *inside),
        lambda: frame_at(refs, lost.start_at + 0.5),
    ):
        with pytest.raises(SegmentFileMissing) as raised:
            read()
        assert raised.value.status_code == 409 and "missing" in str(raised.value)
    assert "holding that moment is missing" in str(raised.value)
    assert not nothing.exists()
    at = refs[2].start_at + 0.5
    _, _, _, shown_at = frame_at(refs, at)  # its neighbours still read
    assert shown_at == pytest.approx(max(t for t, _ in pictures if t <= at + 1e-6), abs=1e-3)


@pytest.mark.parametrize("mount", ["cam00", "bframes"])
def test_a_segment_longer_than_its_indexed_span_is_cut_at_the_next_start(
    simulator: Simulator, tmp_path: Path, mount: str
) -> None:
    refs, _ = record(tmp_path, packets_of(simulator)[mount])
    # As after a camera clock jump: the first segment indexed 3 frames shorter than the
    # media it holds (its end clamped to its last packet's arrival), the next one starting
    # at that indexed end, before the first one's last 3 frames.
    overlap = 3 * FRAME_S
    first = SegmentRef(
        refs[0].path, T0, refs[0].duration_s - overlap, refs[0].keyframes,
        refs[0].init_bytes, refs[0].codec,
    )  # fmt: skip
    second = SegmentRef(
        refs[1].path, first.end_at, refs[1].duration_s, refs[1].keyframes,
        refs[1].init_bytes, refs[1].codec,
    )  # fmt: skip
    out = tmp_path / "joined.mp4"
    facts = export_mp4([first, second], T0, second.end_at, out)
    dts = packet_dts(out)
    assert all(b - a > FRAME_S / 2 for a, b in itertools.pairwise(dts))  # no frames squeezed
    total = len(frames_of_file(refs[0].path)) + len(frames_of_file(refs[1].path))
    assert facts.frames == len(dts) == total - 3  # the 3 frames past the next start left out
    decoded = subprocess.run(
        ["ffmpeg", "-v", "warning", "-i", str(out), "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert decoded.stderr == ""
    if mount == "cam00":  # no reordering: the last 3 decoded are the last 3 shown
        expected = [(T0 + t, n) for t, n in frames_of_file(refs[0].path)][:-3]
        expected += [(second.start_at + t, n) for t, n in frames_of_file(refs[1].path)]
        exported = frames_of_file(out)
        assert [n for _, n in exported] == [n for _, n in expected]
        for (t, _), (wall, _) in zip(exported, expected, strict=True):
            assert facts.first_at + t == pytest.approx(wall, abs=2e-3)  # each at its wall time

    window = playback_fmp4([first, second], T0, second.end_at)  # shifted to follow
    times = [t for t, _ in decoded_frames(window.data)]
    assert all(b - a > FRAME_S / 2 for a, b in itertools.pairwise(times))
