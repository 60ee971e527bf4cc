"""Recording media figures: export speed, disk bytes per received byte, loss at a crash,
playback window cost, the writer's cost and its fdatasync.

Usage::

    python -m bench.recording_media --quick             # about half a minute
    python -m bench.recording_media --json /tmp/bench-recording-media.json

Method
------
Packets are the foundation benchmark's stream (720p25 H.264 High, 2 Mbit/s, 2 s GOP: the
simulator's generated clip), read from the clip file and turned into what ingest hands
over from RTSP: Annex B access units with 90 kHz timestamps (FFmpeg's
``h264_mp4toannexb``), the 10 s clip looped with its timestamps carried on. They are
written by :class:`SegmentWriter` into segments of ``--segment-s`` (a new one at the first
keyframe after that), as the recorder does, into a temporary directory on the disk the
service would use (``--dir``).

- *export x real time*: :func:`export_mp4` of a 60 s window centred on a segment boundary,
  media seconds / wall seconds, median of ``--repeat``. Baseline in the same run: the ring
  clip path (:func:`surveillance.media.clip.remux_mp4`) on the same 60 s of packets in
  memory.
- *disk bytes per received byte*: segment file bytes / packet bytes.
- *crash loss*: a writer in a child process, fed at real time, killed with SIGKILL at a
  random moment ``--crashes`` times; the file salvaged; loss = media time handed to the
  writer before the kill - the salvaged duration. The bound the design promises is one
  fragment (``fragment_s``) plus a frame.
- *playback window*: :func:`playback_fmp4` of 120 s (the files' own fragments, tfdt
  rewritten), against demuxing and remuxing the same window to fragmented MP4 (the other
  way to build it).
- *writer cost*: wall ms per media second of writing (the recorder's disk thread), and one
  ``fdatasync`` after a fragment-sized write (done every ``SYNC_EVERY_S`` of media).
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import pickle
import random
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from bench import harness
from bench.stats import median, rounded
from surveillance.media.clip import remux_mp4
from surveillance.media.packets import Packet, StreamInfo
from surveillance.media.recording_file import (
    SYNC_EVERY_S,
    SegmentFacts,
    SegmentWriter,
    salvage,
)
from surveillance.media.recording_read import SegmentRef, export_mp4, playback_fmp4
from surveillance.simulator import ClipSpec, ensure_clip

BENCHMARK = "bench.recording_media"
STREAM = ClipSpec(profile="high", bitrate_kbps=2000, gop_s=2.0, seconds=10.0)
TICKS_PER_S = 90_000
EXPORT_S = 60.0
PLAYBACK_S = 120.0
T0 = 1_790_000_000.0  # wall time of the first packet
CRASH_AFTER_S = (2.0, 9.0)  # the kill lands at a random moment in this span of writing
CHILD_START_TIMEOUT_S = 60.0
FRAGMENT_BYTES = 250_000  # one second of a 2 Mbit/s stream, for the fdatasync figure
SYNC_SAMPLES = 30


@dataclass(frozen=True)
class Settings:
    quick: bool
    json_path: Path | None
    cache_dir: Path
    wait_quiet_s: float | None
    directory: Path | None  # where segments are written (a temporary directory in it)
    media_s: float  # of packets recorded
    segment_s: float
    fragment_s: float
    repeat: int
    crashes: int


FULL = Settings(False, None, harness.CLIP_CACHE, None, None, 200.0, 60.0, 1.0, 5, 5)
QUICK = replace(FULL, quick=True, media_s=130.0, repeat=3, crashes=2)


def clip_packets(spec: ClipSpec, media_s: float, cache_dir: Path) -> list[Packet]:
    """``media_s`` of the clip's packets as ingest hands them over from RTSP: Annex B, 90 kHz
    timestamps, the clip looped with its timestamps carried on, ``received_at`` at real
    time from 0."""
    path = ensure_clip(spec, cache_dir)
    loop: list[tuple[bytes, int, int, bool]] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        to_ticks = (stream.time_base or Fraction(1, TICKS_PER_S)) * TICKS_PER_S
        annexb = av.bitstream.BitStreamFilterContext("h264_mp4toannexb", stream)
        for packet in container.demux(stream):
            for out in annexb.filter(packet):
                if out.pts is not None and out.dts is not None:
                    pts, dts = round(out.pts * to_ticks), round(out.dts * to_ticks)
                    loop.append((bytes(out), pts, dts, out.is_keyframe))
    info = StreamInfo(
        "h264", spec.width, spec.height, Fraction(1, TICKS_PER_S), None, spec.profile,
        float(spec.fps), T0,
    )  # fmt: skip
    step = TICKS_PER_S // spec.fps
    loop_ticks = len(loop) * step
    packets: list[Packet] = []
    while len(packets) * step < media_s * TICKS_PER_S:
        data, pts, dts, keyframe = loop[len(packets) % len(loop)]
        offset = len(packets) // len(loop) * loop_ticks
        at = len(packets) * step / TICKS_PER_S
        packets.append(Packet(len(packets), data, pts + offset, dts + offset, keyframe, at, info))
    return packets


def _wall(packet: Packet, first: Packet) -> float:
    return T0 + ((packet.dts or 0) - (first.dts or 0)) / TICKS_PER_S


def record(
    packets: Sequence[Packet], directory: Path, segment_s: float, fragment_s: float
) -> tuple[list[SegmentRef], list[SegmentFacts]]:
    """Segments as the recorder writes them: a new one at the first keyframe ``segment_s``
    after the current one started; media time follows the packets' wall time."""
    refs: list[SegmentRef] = []
    facts: list[SegmentFacts] = []
    writer: SegmentWriter | None = None
    started_at = 0.0

    def close() -> None:
        assert writer is not None
        done = writer.close()
        facts.append(done)
        refs.append(
            SegmentRef(writer.path, started_at, done.duration_s, tuple(done.keyframes),
                       done.init_bytes, done.codec)
        )  # fmt: skip

    for packet in packets:
        at = _wall(packet, packets[0])
        if writer is not None and packet.keyframe and at - started_at >= segment_s:
            close()
            writer = None
        if writer is None:
            if not packet.keyframe:
                continue
            started_at = at
            writer = SegmentWriter(directory / f"{len(refs):04d}.mp4", packet, fragment_s)
        else:
            writer.add(packet)
    if writer is not None:
        close()
    return refs, facts


def _timed(action: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median wall seconds and median CPU seconds (this process) of ``action``: on a shared
    machine the CPU time says more about the work than the wall time."""
    walls: list[float] = []
    cpus: list[float] = []
    for _ in range(repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        action()
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu_started)
    wall, cpu = median(walls), median(cpus)
    assert wall is not None and cpu is not None
    return wall, cpu


def export_x_realtime(
    refs: Sequence[SegmentRef], packets: Sequence[Packet], directory: Path, repeat: int
) -> dict[str, Any]:
    """A 60 s export centred on the first segment boundary, as media s / wall s; baseline:
    the ring clip path (remux_mp4) on the same packets in memory."""
    boundary = refs[1].start_at
    start_at, end_at = boundary - EXPORT_S / 2, boundary + EXPORT_S / 2
    out = directory / "export.mp4"
    facts = export_mp4(refs, start_at, end_at, out)
    wall_s, cpu_s = _timed(lambda: export_mp4(refs, start_at, end_at, out), repeat)
    walls = [_wall(p, packets[0]) for p in packets]
    first = max(i for i, p in enumerate(packets) if p.keyframe and walls[i] <= start_at)
    window = [p for p, w in zip(packets, walls, strict=True) if w < end_at][first:]
    ring_s, ring_cpu_s = _timed(lambda: remux_mp4(window), repeat)
    return {
        "export_media_s": rounded(facts.duration_s, 2),
        "export_frames": facts.frames,
        "export_bytes": out.stat().st_size,
        "export_ms": rounded(wall_s * 1000, 1),
        "export_x_realtime": rounded(facts.duration_s / wall_s, 1),
        "export_cpu_ms": rounded(cpu_s * 1000, 1),
        "ring_remux_ms": rounded(ring_s * 1000, 1),
        "ring_remux_x_realtime": rounded(facts.duration_s / ring_s, 1),
        "ring_remux_cpu_ms": rounded(ring_cpu_s * 1000, 1),
    }


def disk_bytes_per_received_byte(facts: Sequence[SegmentFacts], packets: Sequence[Packet]) -> float:
    """Segment file bytes over the packet bytes they hold (container overhead, and the
    parameter sets put in front of every keyframe)."""
    return sum(f.bytes for f in facts) / sum(p.size for p in packets)


def _crash_child(packets_file: str, path: str, fragment_s: float, handed: Any) -> None:
    """Write packets at real time; after each one ``handed`` holds the media time handed
    over so far (its frame's end). Runs until killed."""
    packets: list[Packet] = pickle.loads(Path(packets_file).read_bytes())
    first = packets[0]
    frame_s = 1 / (first.info.average_fps or 25.0)
    started = time.monotonic()
    writer = SegmentWriter(Path(path), first, fragment_s)
    handed.value = frame_s
    for packet in packets[1:]:
        time.sleep(max(0.0, started + packet.received_at - first.received_at - time.monotonic()))
        writer.add(packet)
        handed.value = ((packet.dts or 0) - (first.dts or 0)) / TICKS_PER_S + frame_s


def crash_loss_s(
    packets: Sequence[Packet], directory: Path, fragment_s: float, trials: int, seed: int = 12
) -> list[float]:
    """Media seconds lost when the writing process is killed (SIGKILL) at a random moment:
    media time handed to the writer before the kill - the salvaged file's duration."""
    rng = random.Random(seed)
    feed = [p for p in packets if _wall(p, packets[0]) < T0 + CRASH_AFTER_S[1] + 5.0]
    packets_file = directory / "crash-packets.pickle"
    packets_file.write_bytes(pickle.dumps(feed))
    context = multiprocessing.get_context("spawn")  # a clean child: no threads forked
    losses: list[float] = []
    for trial in range(trials):
        path = directory / f"crash-{trial}.mp4"
        handed = context.Value("d", 0.0, lock=False)
        child = context.Process(
            target=_crash_child, args=(str(packets_file), str(path), fragment_s, handed)
        )
        child.start()
        deadline = time.monotonic() + CHILD_START_TIMEOUT_S
        while handed.value == 0.0 and child.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(*CRASH_AFTER_S))
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        facts = salvage(path)
        losses.append(handed.value - (facts.duration_s if facts else 0.0))
    return losses


def _remux_window(refs: Sequence[SegmentRef], start_at: float, end_at: float) -> bytes:
    """The other way to build a playback window: demux the segments, remux to fMP4."""
    sink = io.BytesIO()
    output: Any = None
    first_at: float | None = None
    last_dts = -1
    try:
        for ref in refs:
            if ref.end_at <= start_at or ref.start_at >= end_at:
                continue
            with av.open(str(ref.path), "r") as source:
                stream = source.streams.video[0]
                if output is None:
                    output = av.open(
                        sink, "w", format="mp4",
                        options={"movflags": "empty_moov+default_base_moof+frag_keyframe"},
                    )  # fmt: skip
                    out_stream = output.add_stream_from_template(stream, opaque=True)
                    out_stream.time_base = Fraction(1, TICKS_PER_S)
                scale = stream.time_base or Fraction(1, TICKS_PER_S)
                for packet in source.demux(stream):
                    if packet.dts is None or packet.pts is None:
                        continue
                    at = ref.start_at + float(packet.dts * scale)
                    if at >= end_at:
                        break
                    if first_at is None:
                        if at < start_at - 2.0 or not packet.is_keyframe:
                            continue
                        first_at = at
                    dts = max(last_dts + 1, round((at - first_at) * TICKS_PER_S))
                    pts = dts + round(float((packet.pts - packet.dts) * scale) * TICKS_PER_S)
                    last_dts = dts
                    packet.stream = out_stream
                    packet.time_base = Fraction(1, TICKS_PER_S)
                    packet.dts, packet.pts = dts, pts
                    output.mux(packet)
    finally:
        if output is not None:
            output.close()
    return sink.getvalue()


def playback_cost(refs: Sequence[SegmentRef], repeat: int) -> dict[str, Any]:
    """A 120 s playback window across a boundary from the files' own fragments; baseline:
    demux and remux of the same window."""
    start_at = refs[1].start_at - PLAYBACK_S / 2
    end_at = start_at + PLAYBACK_S
    window = playback_fmp4(refs, start_at, end_at)
    own_s, own_cpu_s = _timed(lambda: playback_fmp4(refs, start_at, end_at), repeat)
    remux_s, remux_cpu_s = _timed(lambda: _remux_window(refs, start_at, end_at), repeat)
    return {
        "playback_media_s": rounded(window.end_at - window.first_at, 2),
        "playback_bytes": len(window.data),
        "playback_ms": rounded(own_s * 1000, 2),
        "playback_cpu_ms": rounded(own_cpu_s * 1000, 2),
        "playback_remux_ms": rounded(remux_s * 1000, 2),
        "playback_remux_cpu_ms": rounded(remux_cpu_s * 1000, 2),
        "playback_x_cheaper_than_remux": rounded(remux_cpu_s / max(own_cpu_s, 1e-6), 1),
    }


def writer_cost(packets: Sequence[Packet], directory: Path, fragment_s: float) -> dict[str, Any]:
    """Wall ms per media second of writing 60 s (the recorder's disk thread), and one
    fdatasync after a fragment-sized write, against the write alone."""
    part = [p for p in packets if _wall(p, packets[0]) < T0 + 60.0]
    path = directory / "writer-cost.mp4"
    started = time.perf_counter()
    writer = SegmentWriter(path, part[0], fragment_s)
    for packet in part[1:]:
        writer.add(packet)
    facts = writer.close()
    elapsed = time.perf_counter() - started
    write_ms, sync_ms = [], []
    chunk = os.urandom(FRAGMENT_BYTES)
    fd = os.open(directory / "sync.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for _ in range(SYNC_SAMPLES):
            started = time.perf_counter()
            os.write(fd, chunk)
            written = time.perf_counter()
            os.fdatasync(fd)
            write_ms.append((written - started) * 1000)
            sync_ms.append((time.perf_counter() - written) * 1000)
    finally:
        os.close(fd)
    return {
        "writer_ms_per_media_s": rounded(elapsed * 1000 / facts.duration_s, 3),
        "fragment_write_ms": rounded(median(write_ms), 3),
        "fdatasync_ms": rounded(median(sync_ms), 3),
        "fdatasync_every_media_s": SYNC_EVERY_S,
    }


def run_phases(settings: Settings) -> dict[str, Any]:
    harness.progress(BENCHMARK, "reading the clip's packets")
    packets = clip_packets(STREAM, settings.media_s, settings.cache_dir)
    with tempfile.TemporaryDirectory(prefix="bench-recording-", dir=settings.directory) as tmp:
        directory = Path(tmp)
        if settings.wait_quiet_s:
            harness.wait_quiet(BENCHMARK, settings.wait_quiet_s)
        harness.progress(BENCHMARK, f"recording {settings.media_s:g} s into segments")
        refs, facts = record(packets, directory, settings.segment_s, settings.fragment_s)
        if len(refs) < 2:
            raise SystemExit("--media-s must cover at least two segments")
        phases: dict[str, Any] = {
            "segments": len(refs),
            "disk_bytes_per_received_byte": rounded(
                disk_bytes_per_received_byte(facts, packets), 4
            ),
        }
        harness.progress(BENCHMARK, "export")
        phases["export"] = export_x_realtime(refs, packets, directory, settings.repeat)
        harness.progress(BENCHMARK, "playback window")
        phases["playback"] = playback_cost(refs, settings.repeat)
        harness.progress(BENCHMARK, "writer cost and fdatasync")
        phases["writer"] = writer_cost(packets, directory, settings.fragment_s)
        harness.progress(BENCHMARK, f"crash loss ({settings.crashes} kills)")
        losses = crash_loss_s(packets, directory, settings.fragment_s, settings.crashes)
        phases["crash_loss_s"] = [rounded(v, 3) for v in losses]
    return phases


def summarize(settings: Settings, phases: dict[str, Any]) -> dict[str, Any]:
    losses = phases["crash_loss_s"]
    return {
        "stream": STREAM.key(),
        "export_x_realtime": phases["export"]["export_x_realtime"],
        "ring_remux_x_realtime": phases["export"]["ring_remux_x_realtime"],
        "disk_bytes_per_received_byte": phases["disk_bytes_per_received_byte"],
        "crash_loss_s_max": max(losses) if losses else None,
        "crash_loss_bound_s": settings.fragment_s + 1 / STREAM.fps,
        "playback_x_cheaper_than_remux": phases["playback"]["playback_x_cheaper_than_remux"],
    }


def print_table(r: dict[str, Any]) -> None:
    m, p = r["machine"], r["phases"]
    print(f"\n{BENCHMARK}  {r['timestamp']}  {m['nproc']} cores ({m['cpu_model']})")
    print(f"  {r['command']}")
    print(f"  stream {r['stream']}, {p['segments']} segments\n")
    e, pb, w = p["export"], p["playback"], p["writer"]
    export = f"{e['export_x_realtime']} x real time ({e['export_ms']} ms)"
    export_cpu = f"CPU {e['export_cpu_ms']} ms"
    ring = f"ring remux {e['ring_remux_x_realtime']} x ({e['ring_remux_ms']} ms)"
    ring_cpu = f"CPU {e['ring_remux_cpu_ms']} ms"
    losses = ", ".join(f"{v:g}" for v in p["crash_loss_s"])
    bound = f"bound {r['crash_loss_bound_s']:g} s (one fragment + a frame)"
    playback = f"{pb['playback_ms']} ms, CPU {pb['playback_cpu_ms']} ms"
    remux = (
        f"demux+remux {pb['playback_remux_ms']} ms, CPU {pb['playback_remux_cpu_ms']} ms "
        f"({pb['playback_x_cheaper_than_remux']} x the CPU)"
    )
    sync = (
        f"the write alone {w['fragment_write_ms']} ms; "
        f"done every {w['fdatasync_every_media_s']:g} s of media"
    )
    rows = [
        ("60 s export across a boundary", export, ring),
        ("", export_cpu, ring_cpu),
        ("disk bytes / received byte", f"{p['disk_bytes_per_received_byte']}", "1.0: packets"),
        ("crash loss (SIGKILL), s", losses, bound),
        ("120 s playback window", playback, remux),
        ("writer per media second", f"{w['writer_ms_per_media_s']} ms", ""),
        ("fdatasync after a fragment", f"{w['fdatasync_ms']} ms", sync),
    ]
    for label, value, baseline in rows:
        print(f"  {label:<32} {value:<34} {baseline}")


def parse_settings(argv: Sequence[str]) -> Settings:
    parser = argparse.ArgumentParser(prog=BENCHMARK, description=__doc__.split("\n")[0])
    harness.add_run_options(
        parser, quick="fewer repeats and kills, 130 s of media", wait_quiet="wait up to S s idle"
    )
    parser.add_argument("--dir", dest="directory", type=Path, help="write segments under here")
    parser.add_argument("--media-s", type=float, help="media seconds recorded")
    parser.add_argument("--segment-s", type=float, help="segment length")
    parser.add_argument("--fragment-s", type=float, help="fragment length")
    parser.add_argument("--repeat", type=int, help="timed repeats (medians)")
    parser.add_argument("--crashes", type=int, help="writer processes killed")
    return harness.settings_from(parser.parse_args(argv), FULL, QUICK)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return harness.run_benchmark(
        BENCHMARK,
        argv,
        parse_settings(argv),
        versions=lambda: {"pyav": av.__version__},
        run_phases=run_phases,
        summarize=summarize,
        print_table=print_table,
    )


if __name__ == "__main__":
    sys.exit(main())
