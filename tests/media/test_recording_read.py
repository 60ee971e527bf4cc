"""Reading recorded segments: exports across segment boundaries and gaps, the picture at a
moment, playback windows for Media Source Extensions; real camera packets, real files, the
simulator's frame numbers to tell which picture came out."""

from __future__ import annotations

import io
import itertools
import random
import subprocess
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from surveillance.media.packets import Packet
from surveillance.media.recording_file import SegmentWriter
from surveillance.media.recording_read import (
    RecordingUnavailable,
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
    tmp_path: Path, packets: list[Packet], gap_s: float = 0.0, split_gop: int = 2
) -> tuple[list[SegmentRef], list[tuple[float, int | None]]]:
    """Two segments, the second starting at a keyframe ``gap_s`` after the first ends (as
    a recorder dates them); and every picture as (wall time, frame number)."""
    split = [i for i, p in enumerate(packets) if p.keyframe][split_gop]
    refs: list[SegmentRef] = []
    pictures: list[tuple[float, int | None]] = []
    start_at = T0
    for index, part in enumerate((packets[:split], packets[split:])):
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
