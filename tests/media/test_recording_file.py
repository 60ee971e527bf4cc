"""Recording segments: real camera packets (H.264, B-frames, H.265, parameter sets only in
the SDP) written as fragmented MP4, played back by FFmpeg, cut anywhere and salvaged."""

from __future__ import annotations

import errno
import hashlib
import io
import itertools
import pickle
import random
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import av
import pytest

from surveillance.media.mp4_boxes import iter_fragments, parse_init, read_init
from surveillance.media.packets import Packet
from surveillance.media.recording_file import SegmentFacts, SegmentWriter, salvage
from surveillance.simulator import Simulator
from tests.media.camera_packets import MOUNTS, decoded_frames, frame_numbers_follow, packets_of


def write_segment(path: Path, packets: list[Packet], fragment_s: float = 1.0) -> SegmentFacts:
    writer = SegmentWriter(path, packets[0], fragment_s)
    for packet in packets[1:]:
        writer.add(packet)
    return writer.close()


def fragment_ends(path: Path) -> list[int]:
    with path.open("rb") as file:
        init = read_init(file)
        return [f.offset + f.size for f in iter_fragments(file, parse_init(init), len(init))]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("mount", MOUNTS)
def test_a_segment_holds_every_packet_and_plays_from_any_keyframe(
    simulator: Simulator, tmp_path: Path, mount: str
) -> None:
    packets = packets_of(simulator)[mount]
    info = packets[0].info
    path = tmp_path / "segment.mp4"
    writer = SegmentWriter(path, packets[0], fragment_s=1.0)
    for index, packet in enumerate(packets[1:], 1):
        writer.add(packet)
        if index == len(packets) // 2:
            # Every finished fragment is in the file at once, nothing else is.
            middle = writer.progress()
            assert path.stat().st_size == middle.bytes == writer.bytes_written
            assert middle.duration_s == writer.duration_s
            assert index / 25 - 1.2 < middle.duration_s <= index / 25 + 0.1
            assert salvage_copy(path, tmp_path / "open-copy.mp4") == replace(
                middle, sha256=sha256_of(tmp_path / "open-copy.mp4")
            )
    facts = writer.close()

    assert (facts.codec, facts.width, facts.height) == (info.codec, 640, 360)
    assert facts.frames == len(packets)
    assert facts.bytes == path.stat().st_size and facts.sha256 == sha256_of(path)
    assert facts.duration_s == pytest.approx(len(packets) / 25, abs=1e-3)  # whole GOPs
    assert len(facts.keyframes) == sum(p.keyframe for p in packets)
    assert facts.keyframes[0][1] == facts.init_bytes
    data = path.read_bytes()
    assert data[facts.init_bytes + 4 : facts.init_bytes + 8] == b"moof"

    frames = decoded_frames(data)
    times = [t for t, _ in frames]
    assert len(frames) == len(packets)
    assert all(a < b for a, b in itertools.pairwise(times))
    assert frame_numbers_follow([n for _, n in frames])  # display order right with B-frames
    assert times[0] == pytest.approx(facts.keyframes[0][0])
    with av.open(io.BytesIO(data)) as container:
        demuxed = [p for p in container.demux(container.streams.video[0]) if p.size]
    reordered = sum(p.pts != p.dts for p in demuxed)
    assert (reordered > 0) == (mount == "bframes")

    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v",
         "-show_entries", "stream=codec_name,nb_read_frames", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert probe.stdout.strip() == f"{info.codec},{len(packets)}" and not probe.stderr

    # A reader starts at any keyframe's moof: the init segment, then the file from there.
    for time_s, offset in facts.keyframes[1:]:
        tail = decoded_frames(data[: facts.init_bytes] + data[offset:])
        assert tail[0][0] == pytest.approx(time_s)
        assert tail == frames[-len(tail) :]

    assert salvage(path) == facts  # a whole file salvages to itself, unchanged
    assert path.stat().st_size == facts.bytes


def salvage_copy(source: Path, copy: Path, size: int | None = None) -> SegmentFacts | None:
    with source.open("rb") as src, copy.open("wb") as dst:
        dst.write(src.read() if size is None else src.read(size))
    return salvage(copy)


def test_a_file_cut_anywhere_is_salvaged_to_its_whole_fragments(
    simulator: Simulator, tmp_path: Path
) -> None:
    packets = packets_of(simulator)["bframes"]
    path = tmp_path / "whole.mp4"
    facts = write_segment(path, packets, fragment_s=0.5)
    ends = fragment_ends(path)
    assert len(ends) >= 2 * len(facts.keyframes) - 1  # fragment_s cuts GOPs of 1 s
    frames = decoded_frames(path.read_bytes())
    cuts = random.Random(12).sample(range(facts.init_bytes, facts.bytes), 10)
    for cut in [*cuts, ends[1], ends[1] + 7]:
        copy = tmp_path / f"cut-{cut}.mp4"
        salvaged = salvage_copy(path, copy, cut)
        kept = max((end for end in ends if end <= cut), default=None)
        if kept is None:
            assert salvaged is None
            continue
        assert salvaged is not None
        assert salvaged.bytes == kept == copy.stat().st_size
        assert salvaged.sha256 == sha256_of(copy)
        assert salvaged.keyframes == [k for k in facts.keyframes if k[1] < kept]
        played = decoded_frames(copy.read_bytes())
        assert len(played) == salvaged.frames
        assert {t for t, _ in played} <= {t for t, _ in frames}
        assert frame_numbers_follow([n for _, n in played])
    assert salvage_copy(path, tmp_path / "init-only.mp4", facts.init_bytes + 3) is None
    assert salvage_copy(path, tmp_path / "half-init.mp4", facts.init_bytes // 2) is None


@pytest.fixture
def file_size_limit() -> Iterator[list[int]]:
    """The kernel's own "file too large" (EFBIG) past a size, the real error of a write the
    file system refuses: the test sets the limit it needs in the list."""
    limit: list[int] = []
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
    try:
        yield limit
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def test_a_refused_write_keeps_the_whole_fragments(
    simulator: Simulator, tmp_path: Path, file_size_limit: list[int]
) -> None:
    packets = packets_of(simulator)["cam00"]
    reference = tmp_path / "reference.mp4"
    write_segment(reference, packets)
    ends = fragment_ends(reference)
    path = tmp_path / "refused.mp4"
    writer = SegmentWriter(path, packets[0])
    limit = ends[1] + 1000  # the third fragment is cut short by the limit
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    with pytest.raises(OSError) as raised:
        for packet in packets[1:]:
            writer.add(packet)
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, hard))
    assert raised.value.errno == errno.EFBIG
    assert path.stat().st_size == limit  # the refused fragment is half in the file
    with pytest.raises(ValueError, match="abort"):
        writer.add(packets[-1])  # nothing more goes after half a fragment
    kept = writer.abort()
    assert kept is not None
    assert kept.bytes == ends[1] == path.stat().st_size
    assert kept.sha256 == sha256_of(path)
    assert salvage(path) == kept
    assert len(decoded_frames(path.read_bytes())) == kept.frames == 50


def test_a_segment_is_a_new_file_of_one_connection_from_a_keyframe(
    simulator: Simulator, tmp_path: Path
) -> None:
    packets = packets_of(simulator)["cam00"]
    existing = tmp_path / "existing.mp4"
    existing.write_bytes(b"kept")
    with pytest.raises(FileExistsError):
        SegmentWriter(existing, packets[0])
    assert existing.read_bytes() == b"kept"
    link = tmp_path / "link.mp4"
    link.symlink_to(tmp_path / "elsewhere.mp4")
    with pytest.raises(FileExistsError):
        SegmentWriter(link, packets[0])
    assert not (tmp_path / "elsewhere.mp4").exists()
    with pytest.raises(ValueError, match="keyframe"):
        SegmentWriter(tmp_path / "late.mp4", packets[1])
    assert not (tmp_path / "late.mp4").exists()
    writer = SegmentWriter(tmp_path / "one.mp4", packets[0])
    other = packets_of(simulator)["sdp-only"][1]
    with pytest.raises(ValueError, match="one connection"):
        writer.add(other)
    facts = writer.close()
    assert facts.frames == 1


CRASH_CHILD = """
import pickle, sys, time
from pathlib import Path
from surveillance.media.recording_file import SegmentWriter
packets = pickle.loads(Path(sys.argv[1]).read_bytes())
writer = SegmentWriter(Path(sys.argv[2]), packets[0], float(sys.argv[3]))
print(1, flush=True)
started = time.monotonic()
for count, packet in enumerate(packets[1:], 2):
    time.sleep(max(0.0, started + (count - 1) * 0.04 - time.monotonic()))
    writer.add(packet)
    print(count, flush=True)
time.sleep(60)
"""


def test_a_killed_writer_loses_at_most_the_fragment_being_built(
    simulator: Simulator, tmp_path: Path
) -> None:
    packets = packets_of(simulator)["cam00"]
    feed = tmp_path / "packets.pickle"
    feed.write_bytes(pickle.dumps(packets))
    path = tmp_path / "killed.mp4"
    fragment_s = 0.5
    child = subprocess.Popen(
        [sys.executable, "-c", CRASH_CHILD, str(feed), str(path), str(fragment_s)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "1"  # writing from now on, at real time
        time.sleep(random.Random(5).uniform(1.2, 3.0))
    finally:
        child.send_signal(signal.SIGKILL)
        output, _ = child.communicate()
    handed = int(output.split()[-1]) if output.split() else 1
    assert handed < len(packets)  # killed while writing
    salvaged = salvage(path)
    assert salvaged is not None
    lost_s = handed * 0.04 - salvaged.duration_s
    assert -0.05 < lost_s <= fragment_s + 0.05
    played = decoded_frames(path.read_bytes())
    assert len(played) == salvaged.frames
    assert frame_numbers_follow([n for _, n in played])


def test_a_clock_jump_is_taken_out_and_lost_packets_are_kept(
    simulator: Simulator, tmp_path: Path
) -> None:
    # The simulator's clock does not jump on demand: the jump is imitated by shifting the
    # timestamps of real packets (their arrival times stay as captured).
    packets = packets_of(simulator)["cam00"]
    frame = round(1 / 25 / packets[0].info.time_base)
    cut = len(packets) * 3 // 5 + 3  # mid-GOP, after the connection's first burst
    jumped = (
        packets[:cut]
        + [
            replace(p, pts=p.pts + 600 * frame, dts=p.dts + 600 * frame)  # 6 s ahead, none lost
            for p in packets[cut:]
            if p.pts is not None and p.dts is not None
        ]
    )
    writer = SegmentWriter(tmp_path / "jump.mp4", jumped[0])
    for packet in jumped[1:]:
        writer.add(packet)
    facts = writer.close()
    assert writer.clock_jumps == 1
    times = [t for t, _ in decoded_frames((tmp_path / "jump.mp4").read_bytes())]
    steps = [b - a for a, b in itertools.pairwise(times)]
    assert max(steps) < 0.1 and facts.duration_s < len(jumped) / 25 + 0.1
    # Packets the network lost took their time to not arrive: their time stays a hole.
    lost = packets[:cut] + packets[cut + 20 :]
    facts = write_segment(tmp_path / "lost.mp4", lost)
    times = [t for t, _ in decoded_frames((tmp_path / "lost.mp4").read_bytes())]
    assert max(b - a for a, b in itertools.pairwise(times)) == pytest.approx(21 / 25, abs=0.01)


def test_a_dropped_writer_adds_nothing_to_its_file(simulator: Simulator, tmp_path: Path) -> None:
    """Cluster mode: a node that lost the camera lets the file go as it is (another node
    salvaged it), with no last fragment, cut or sync of its own."""
    packets = packets_of(simulator)["bframes"]
    path = tmp_path / "taken-over.mp4"
    writer = SegmentWriter(path, packets[0], fragment_s=0.5)
    for packet in packets[1 : len(packets) // 2]:
        writer.add(packet)
    before = path.read_bytes()
    assert len(before) > writer.progress().init_bytes  # whole fragments, one being built
    writer.drop()
    assert path.read_bytes() == before
    with pytest.raises(ValueError, match="closed"):
        writer.add(packets[len(packets) // 2])
    assert path.read_bytes() == before
