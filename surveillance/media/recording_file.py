"""One recording segment on disk: a fragmented MP4 written as packets arrive, and salvaged
after a crash.

The file is ``ftyp`` + ``moov`` (the init segment, no samples), then one ``moof`` + ``mdat``
pair per fragment. FFmpeg's MP4 muxer builds it (through PyAV, no re-encoding; the output
stream is copied from a template as in media/fmp4.py, so the ``avcC``/``hvcC`` box comes
from the camera's parameter sets). The muxer writes into memory; each fragment is written
to the file whole, with one ``os.write``, the moment the muxer finishes it. So:

- a crash of the process loses only the fragment FFmpeg was still building (at most
  ``fragment_s`` of media): everything before it is in the file (the kernel's page cache
  survives the process); :func:`salvage` cuts a fragment the crash left half-written;
- the writer knows each fragment's byte offset (the readers start at a keyframe's ``moof``
  without scanning the file), and hashes the file as it goes.

Fragments (movflags, FFmpeg libavformat/movenc.c): ``frag_keyframe`` starts one at every
keyframe, ``frag_duration`` starts one at the first packet ``fragment_s`` or more after the
fragment's first (decode time); ``empty_moov`` puts the init segment first, alone;
``default_base_moof`` makes each fragment's data offsets relative to its own ``moof``, so a
fragment can be read, or moved, without the rest; ``skip_trailer`` leaves out the ``mfra``
index at the end, so a closed file and a salvaged one have the same shape.

Blocking (FFmpeg muxes, the disk writes): call from a worker thread. ``progress`` may be
called from another thread.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import itertools
import os
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from surveillance.media.bitstream import parameter_sets_annexb, with_parameter_sets
from surveillance.media.mp4_boxes import (
    Fragment,
    MemorySink,
    Mp4Error,
    TrackInit,
    iter_fragments,
    parse_init,
    parse_moof,
    read_init,
)
from surveillance.media.packets import Packet, StreamInfo

MEDIA_TIME_BASE = Fraction(1, 90_000)
MOVFLAGS = "empty_moov+default_base_moof+frag_keyframe+skip_trailer"
RAW_FORMATS = {"h264": "h264", "hevc": "hevc"}  # FFmpeg demuxer of each codec's Annex B
DEFAULT_FPS = 25.0  # a frame's duration until the stream shows its own
# Consecutive frames further apart than this are a jump of the camera's clock (a reset, a
# wrap), not time that passed: the timeline carries on one frame later. Shorter jumps are
# packets the network lost, and stay in the media time, which must follow the wall clock
# (a stall longer than ingest's stall_after_s ends the segment before this matters)...
MAX_FRAME_GAP_S = 10.0
# ...unless the packet arrived much sooner than its timestamp says: frames the network lost
# took their time to not arrive, a clock that jumped (media re-shared by an RTSP server to a
# new client, an encoder restart) did not. A step of media time longer than the step of
# arrival time by more than this is a jump: the timeline carries on by the arrival step.
# Handled here, not by the recorder, because here the segment's timeline is built: the
# packet is placed right and the segment goes on, where cutting the segment would lose
# the frames up to the next keyframe (the recorder only re-dates the next segment).
MAX_EARLY_ARRIVAL_S = 1.0
# FFmpeg's RTSP demuxer gives the first packets of a connection no dts (with B-frames, until
# it knows the reorder delay): they wait for the first packet that has one, at most this many.
MAX_HELD_PACKETS = 50
# Force the file's data to the disk after this much media time: a crash of the machine
# (power, kernel) then loses at most this much; a crash of the process loses at most one
# fragment without it. See bench/recording_media.py for its cost.
SYNC_EVERY_S = 10.0
HASH_CHUNK_BYTES = 1 << 20
FILE_MODE = 0o600


@dataclass(frozen=True)
class SegmentFacts:
    bytes: int  # file size as closed / salvaged
    sha256: str  # hex of the whole file ("" from ``progress``)
    # Media time where the segment's timeline ends (the sum of its frames' durations from
    # media time 0, its first packet's decode time): over whole GOPs, the pts span + one
    # frame. The next segment of the same connection starts there.
    duration_s: float
    frames: int
    keyframes: list[tuple[float, int]]  # (media time s of its picture, offset of its moof)
    init_bytes: int  # size of ftyp + moov: the offset of the first moof
    codec: str  # "h264" | "hevc"
    width: int
    height: int


@dataclass
class _Tally:
    """Facts of the whole fragments so far, built the same way by the writer and salvage."""

    track: TrackInit
    init_bytes: int
    end_offset: int = 0
    frames: int = 0
    end_ticks: int = 0
    keyframes: list[tuple[float, int]] = field(default_factory=list)

    def add(self, offset: int, size: int, fragment: Fragment) -> None:
        if fragment.starts_with_keyframe:
            self.keyframes.append((fragment.pts[0] / self.track.timescale, offset))
        self.frames += fragment.frames
        self.end_ticks = max(self.end_ticks, fragment.end)
        self.end_offset = offset + size

    @property
    def duration_s(self) -> float:
        return self.end_ticks / self.track.timescale

    def facts(self, sha256: str) -> SegmentFacts:
        return SegmentFacts(
            bytes=self.end_offset or self.init_bytes,
            sha256=sha256,
            duration_s=self.duration_s,
            frames=self.frames,
            keyframes=list(self.keyframes),
            init_bytes=self.init_bytes,
            codec=self.track.codec,
            width=self.track.width,
            height=self.track.height,
        )


class _Timeline:
    """(pts, dts) of each packet in ticks from the segment's first dts, dts strictly
    increasing, the camera's reorder delay (pts - dts) kept."""

    def __init__(self, info: StreamInfo) -> None:
        ticks_per_s = 1 / info.time_base
        self._ticks_per_s = ticks_per_s
        self._step = max(1, round(ticks_per_s / (info.average_fps or DEFAULT_FPS)))
        self._max_step = round(ticks_per_s * MAX_FRAME_GAP_S)
        self._max_early = round(ticks_per_s * MAX_EARLY_ARRIVAL_S)
        self._origin: int | None = None
        self._last: int | None = None
        self._last_received: float | None = None  # monotonic, of the last packet placed
        self._held: list[Packet] = []
        self.jumps = 0  # clock jumps carried over so far

    @property
    def last_s(self) -> float | None:
        """Decode time (s from media time 0) of the last packet placed."""
        return None if self._last is None else float(self._last / self._ticks_per_s)

    def place(self, packet: Packet) -> list[tuple[Packet, int, int]]:
        """Packets ready to mux, with (pts, dts); none while the first dts is unknown."""
        if self._last is None and packet.dts is None and len(self._held) < MAX_HELD_PACKETS:
            self._held.append(packet)
            return []
        ready: list[tuple[Packet, int, int]] = []
        held, self._held = self._held, []
        if held and packet.dts is not None:
            self._step = _frame_step([*held, packet]) or self._step
            later_pts = [p.pts for p in (*held, packet) if p.pts is not None]
            for back, early in zip(range(len(held), 0, -1), held, strict=True):
                # Counted back from the first known dts, one frame each; a missing pts (the
                # connection's first keyframe) is the frame before the earliest shown after.
                dts = packet.dts - back * self._step
                pts = early.pts
                if pts is None and later_pts:
                    pts = max(dts, min(later_pts) - self._step)
                ready.append(self._place(early, dts, pts))
        else:
            ready += [self._place(early, None, early.pts) for early in held]
        ready.append(self._place(packet, packet.dts, packet.pts))
        return ready

    def drain(self) -> list[tuple[Packet, int, int]]:
        """The held packets, at the end of a segment whose packets never had a dts."""
        held, self._held = self._held, []
        return [self._place(packet, None, packet.pts) for packet in held]

    def _place(self, packet: Packet, dts: int | None, pts: int | None) -> tuple[Packet, int, int]:
        if dts is None and self._last is not None and self._origin is not None:
            out_dts = self._last + self._step
            out_pts = out_dts if pts is None else pts - self._origin
        else:
            raw = dts if dts is not None else pts if pts is not None else 0
            if self._origin is None:
                self._origin = raw
            out_dts = raw - self._origin
            out_pts = out_dts if pts is None else pts - self._origin
            if self._last is not None:
                step = out_dts - self._last
                # At least a frame: a burst of packets arrives at once.
                expected = max(self._step, self._arrival_step(packet))
                if step <= 0 or step > self._max_step or step - expected > self._max_early:
                    shift = step - min(expected, self._max_step)
                    self._origin += shift
                    out_dts -= shift
                    out_pts -= shift
                    self.jumps += 1
                else:
                    self._step = step
        self._last = out_dts
        self._last_received = packet.received_at
        return packet, max(out_pts, out_dts), out_dts

    def _arrival_step(self, packet: Packet) -> int:
        """Ticks between the arrival of the last packet placed and of this one."""
        if self._last_received is None:
            return 0
        return max(0, round((packet.received_at - self._last_received) * self._ticks_per_s))


def _frame_step(packets: list[Packet]) -> int | None:
    """The frame interval the packets' own pts show (the smallest step between them): the
    rate FFmpeg guesses for an RTSP stream may be off (24.75 for 25 fps)."""
    shown = sorted({p.pts for p in packets if p.pts is not None})
    steps = [b - a for a, b in itertools.pairwise(shown)]
    return min(steps) if steps else None


def _template(info: StreamInfo, keyframe: bytes) -> Any:
    """A demuxed stream describing the codec, from its parameter sets and one keyframe."""
    return av.open(
        io.BytesIO(keyframe),
        format=RAW_FORMATS[info.codec],
        options={"probesize": "32", "analyzeduration": "0"},
    )


class SegmentWriter:
    """Write one segment: packets of one connection and one codec/size, first a keyframe."""

    def __init__(self, path: Path, first: Packet, fragment_s: float = 1.0) -> None:
        """Creates ``path`` (never an existing file, never through a symlink; parents made
        by the caller) and writes the init segment. Raises OSError as the disk does."""
        if not first.keyframe:
            raise ValueError("a segment starts with a keyframe")
        if first.info.codec not in RAW_FORMATS:
            raise ValueError(f"cannot record codec {first.info.codec!r}")
        self.path = path
        self.info = first.info
        self._parameter_sets = parameter_sets_annexb(first.info.codec, first.info.extradata)
        self._lock = threading.Lock()
        self._timeline = _Timeline(first.info)
        self._sink = MemorySink()
        self._hash = hashlib.sha256()
        self._written = 0  # bytes in the file, all of them whole boxes
        self._pending_moof: bytes | None = None
        self._tally: _Tally | None = None
        self._synced_ticks = 0
        self._closed = False
        self._failed = False
        self._fd = os.open(
            path,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            FILE_MODE,
        )
        try:
            keyframe = with_parameter_sets(first.info.codec, first.data, self._parameter_sets)
            self._template = _template(first.info, keyframe)
            self._output = av.open(
                self._sink,
                "w",
                format="mp4",
                options={"movflags": MOVFLAGS, "frag_duration": str(round(fragment_s * 1e6))},
                container_options={"flush_packets": "1"},
                buffer_size=4096,
            )
            self._stream = self._output.add_stream_from_template(
                self._template.streams.video[0], opaque=True
            )
            self._stream.time_base = MEDIA_TIME_BASE
            self._output.start_encoding()
            self._drain()  # the init segment is written at start
            if self._written == 0:
                raise Mp4Error("the muxer wrote no init segment")
            self.add(first)
        except BaseException:
            self._release()
            path.unlink(missing_ok=True)
            raise

    def add(self, packet: Packet) -> None:
        """Mux one packet; writes the fragment it completes. Raises OSError (ENOSPC, EROFS,
        EIO) as is: then call :meth:`abort`."""
        if packet.info is not self.info:
            raise ValueError("a segment holds packets of one connection")
        self._check_open()
        for ready in self._timeline.place(packet):
            self._mux(*ready)
        self._drain()

    @property
    def duration_s(self) -> float:
        """Media time written so far (whole fragments)."""
        with self._lock:
            return self._tally.duration_s if self._tally else 0.0

    @property
    def placed_s(self) -> float | None:
        """Decode time of the last packet added (None while the first ones wait for a
        dts): clock jumps taken out, so it can be checked against the arrival time."""
        return self._timeline.last_s

    @property
    def clock_jumps(self) -> int:
        """Jumps of the camera's clock carried over in this segment so far."""
        return self._timeline.jumps

    @property
    def bytes_written(self) -> int:
        with self._lock:
            return self._written

    def progress(self) -> SegmentFacts:
        """Facts of the whole fragments in the file so far (``sha256`` is "")."""
        with self._lock:
            assert self._tally is not None
            return self._tally.facts("")

    def close(self) -> SegmentFacts:
        """Write the last fragment, fsync, return the facts. Raises OSError as :meth:`add`."""
        self._check_open()
        for ready in self._timeline.drain():
            self._mux(*ready)
        self._output.close()  # writes the fragment being built
        self._drain()
        os.fsync(self._fd)
        self._closed = True
        self._release()
        _sync_directory(self.path.parent)
        assert self._tally is not None
        with self._lock:
            return self._tally.facts(self._hash.hexdigest())

    def abort(self) -> SegmentFacts | None:
        """After an OSError: keep the whole fragments (the file is cut after the last one);
        None when there is none (the caller deletes the file). Never raises OSError: a disk
        that refuses even the cut leaves a half fragment that :func:`salvage` cuts later."""
        self._closed = True
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, self._written)
            os.fsync(self._fd)
        self._release()
        tally = self._tally
        if tally is None or tally.frames == 0:
            return None
        with self._lock:
            return tally.facts(self._hash.hexdigest())

    def drop(self) -> None:
        """Let go of the file without another byte, cut or sync: it is not this writer's
        any more (cluster mode: another node took the camera over and salvages it). What
        the muxer still holds goes to its memory sink only, never to the file."""
        self._closed = True
        self._release()

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("the segment is closed")
        if self._failed:
            # The file may end in half a fragment: writing on would bury it mid-file.
            raise ValueError("a write to the segment failed: abort it")

    def _mux(self, packet: Packet, pts: int, dts: int) -> None:
        data = packet.data
        if packet.keyframe:
            # Parameter sets in front of every keyframe: a camera that sends them only in
            # the SDP still plays from any keyframe of the file.
            data = with_parameter_sets(self.info.codec, data, self._parameter_sets)
        av_packet = av.Packet(data)
        av_packet.time_base = self.info.time_base
        av_packet.dts = dts
        av_packet.pts = pts
        av_packet.is_keyframe = packet.keyframe
        av_packet.stream = self._stream
        self._output.mux(av_packet)

    def _drain(self) -> None:
        """Write each box the muxer finished: the init segment, then whole fragments."""
        buffer = self._sink.data
        init = b""
        while len(buffer) >= 8:
            size = int.from_bytes(buffer[0:4], "big")
            if size < 8 or len(buffer) < size:
                break
            box = bytes(buffer[:size])
            del buffer[:size]
            kind = box[4:8]
            if kind in (b"ftyp", b"moov"):
                init += box
                if kind == b"moov":
                    self._write(init)
                    with self._lock:
                        self._tally = _Tally(parse_init(init), len(init), len(init))
            elif kind == b"moof":
                self._pending_moof = box
            elif kind == b"mdat" and self._pending_moof is not None and self._tally is not None:
                moof, self._pending_moof = self._pending_moof, None
                fragment = parse_moof(moof, self._tally.track)
                offset = self._written
                self._write(moof + box)
                with self._lock:
                    self._tally.add(offset, len(moof) + len(box), fragment)
                self._maybe_sync(fragment)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                done = os.write(self._fd, view)
                view = view[done:]
        except OSError:
            self._failed = True
            raise
        self._hash.update(data)
        with self._lock:
            self._written += len(data)

    def _maybe_sync(self, fragment: Fragment) -> None:
        assert self._tally is not None
        if fragment.end - self._synced_ticks >= SYNC_EVERY_S * self._tally.track.timescale:
            try:
                os.fdatasync(self._fd)
            except OSError:
                self._failed = True
                raise
            self._synced_ticks = fragment.end

    def _release(self) -> None:
        for closing in (getattr(self, "_output", None), getattr(self, "_template", None)):
            if closing is not None:
                # After a failure the muxer may refuse to finish: nothing of it is needed.
                with contextlib.suppress(av.FFmpegError, ValueError, OSError):
                    closing.close()
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1


def _sync_directory(directory: Path) -> None:
    """Make the new file's directory entry durable (a file fsync does not)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def salvage(path: Path) -> SegmentFacts | None:
    """After a crash: cut the file after its last whole ``moof`` + ``mdat`` and describe it;
    None when it holds no whole fragment (or not even an init segment)."""
    fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "r+b") as file:
        try:
            init = read_init(file)
            tally = _Tally(parse_init(init), len(init), len(init))
            for at in iter_fragments(file, tally.track, len(init)):
                tally.add(at.offset, at.size, at.fragment)
        except Mp4Error:
            return None
        if tally.frames == 0:
            return None
        end = tally.end_offset
        if file.seek(0, os.SEEK_END) > end:
            file.truncate(end)
            file.flush()
            os.fsync(file.fileno())
        return tally.facts(_sha256(file, end))


def _sha256(file: Any, size: int) -> str:
    digest = hashlib.sha256()
    file.seek(0)
    left = size
    while left > 0:
        chunk = file.read(min(HASH_CHUNK_BYTES, left))
        if not chunk:
            raise OSError(errno.EIO, "the file ended while hashing it")
        digest.update(chunk)
        left -= len(chunk)
    return digest.hexdigest()
