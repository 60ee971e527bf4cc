"""Reading recorded segments: an MP4 export, the picture at a moment, fMP4 for playback.

Every reader starts at the keyframe at or before the wanted time without scanning the file:
the index keeps each keyframe's ``moof`` byte offset, and a segment's fragments stand alone
(``default_base_moof``), so the init segment followed by the file from that ``moof`` on is
itself a valid fragmented MP4. Only the ``moof`` boxes are read to find where a window
ends; media bytes are read once, by whoever needs them.

Wall time: a segment's media time ``t`` is ``start_at + t``.

- **Export** keeps each segment at its own wall time: a gap between segments stays a gap in
  the MP4's timeline (the last picture before it lasts until the next), so a viewer's clock
  reads real time all along; the ``note`` says where the gaps are. Where a segment holds
  media past the next one's start, its frames past that start are left out (see
  ``_export_into``), since decode times must increase.
- A segment whose **file is missing** (deleted or renamed outside the node) is a gap for
  every reader; only a request with nothing readable left is refused (SegmentFileMissing).
- **Playback** (Media Source Extensions) is built from the files' own fragments, only their
  ``tfdt`` (decode time) rewritten, no demux or remux. Gaps longer than ``JOIN_S`` stay
  gaps (the page jumps them: the buffered ranges show where); shorter ones, the boundaries
  of one camera connection cut into segments, are closed up, because a browser stops at any
  hole in its buffer.
- **frame_at** decodes one GOP at most, from the keyframe at or before the moment.

Blocking (file reads, FFmpeg): call from a worker thread.
"""

from __future__ import annotations

import bisect
import io
import itertools
import os
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import av

from surveillance.errors import Conflict, NotFound
from surveillance.media.bitstream import codec_string, parameter_sets_annexb
from surveillance.media.decode import encode_jpeg
from surveillance.media.mp4_boxes import (
    FragmentAt,
    Mp4Error,
    TrackInit,
    iter_fragments,
    parse_init,
    write_base_dts,
)

OUTPUT_TICKS_PER_S = 90_000
OUTPUT_TIME_BASE = Fraction(1, OUTPUT_TICKS_PER_S)
JOIN_S = 0.5  # playback closes gaps this short between segments (one connection's boundaries)
# The init segment says all a muxer needs of the stream: FFmpeg need not decode frames to
# learn more (avformat_find_stream_info would, at every open).
OPEN_OPTIONS = {"probesize": "32", "analyzeduration": "0"}
GAP_NOTE_S = 0.5  # export notes gaps and a late start / early end longer than this
FALLBACK_CODEC_STRING = {"h264": "avc1.640028", "hevc": "hev1.1.6.L93.B0"}


class RecordingUnavailable(NotFound):
    """Nothing recorded in the window asked for (or the files cannot be read)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SegmentFileMissing(Conflict):
    """A segment the index holds has no file (deleted or renamed outside the node). Readers
    treat it as a gap; this is raised only when nothing readable is left of what was asked
    (409: the camera and the window are right, the footage is gone)."""


@dataclass(frozen=True)
class SegmentRef:
    """What the reader needs of a segment (from the index or the open writer)."""

    path: Path  # absolute
    start_at: float  # epoch s of media time 0 (its first packet's decode time)
    duration_s: float  # readable media time (whole fragments; SegmentFacts.duration_s)
    keyframes: tuple[tuple[float, int], ...]  # (media time s, moof offset)
    init_bytes: int
    codec: str

    @property
    def end_at(self) -> float:
        return self.start_at + self.duration_s


@dataclass(frozen=True)
class ExportFacts:
    codec: str
    width: int
    height: int
    frames: int
    duration_s: float
    first_at: float  # epoch s of the first frame in the output (its media time 0)
    note: str | None  # gaps, a late start, an early end, a change of codec or size


@dataclass(frozen=True)
class PlaybackWindow:
    mime: str  # 'video/mp4; codecs="avc1.640028"' (codec string from the parameter sets)
    first_at: float  # epoch s of media time 0 of ``data``
    end_at: float  # epoch s where its last frame ends
    data: bytes  # init segment + fragments (MSE appends it as is)

    @property
    def codecs(self) -> str:
        """The codecs parameter alone (``avc1.640028``)."""
        return self.mime.split('codecs="', 1)[1].rstrip('"')


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Segment:
    """One segment file, open for reading: its init segment and whole fragments."""

    def __init__(self, ref: SegmentRef) -> None:
        self.ref = ref
        try:
            fd = os.open(ref.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError as exc:
            raise SegmentFileMissing(
                f"the segment file of {_iso(ref.start_at)} to {_iso(ref.end_at)} is missing"
            ) from exc
        except OSError as exc:
            raise RecordingUnavailable(
                f"the recording of {_iso(ref.start_at)} cannot be read ({exc.strerror})"
            ) from exc
        self.file: io.BufferedReader = os.fdopen(fd, "rb")
        try:
            self.init = self.file.read(ref.init_bytes)
            self.track = parse_init(self.init)
        except (Mp4Error, OSError) as exc:
            self.file.close()
            raise RecordingUnavailable(
                f"the recording of {_iso(ref.start_at)} is damaged: {exc}"
            ) from exc

    def close(self) -> None:
        self.file.close()

    @property
    def shape(self) -> tuple[str, int, int]:
        return self.track.codec, self.track.width, self.track.height

    def keyframe_offset(self, media_s: float) -> int:
        """The moof of the keyframe at or before ``media_s`` (the first one if none is)."""
        times = [t for t, _ in self.ref.keyframes]
        index = max(0, bisect.bisect_right(times, media_s + 1e-6) - 1)
        return self.ref.keyframes[index][1]

    def fragments(self, offset: int, until_s: float) -> Iterator[FragmentAt]:
        """Whole fragments from ``offset`` that start (decode time) before ``until_s`` and
        within the readable duration."""
        scale = self.track.timescale
        limit_s = min(until_s, self.ref.duration_s)
        for at in iter_fragments(self.file, self.track, offset):
            if at.fragment.base_dts / scale >= limit_s:
                return
            yield at

    def read(self, offset: int, size: int) -> bytearray:
        data = bytearray(size)
        self.file.seek(offset)
        if self.file.readinto(data) < size:
            raise RecordingUnavailable(f"the recording of {_iso(self.ref.start_at)} was cut short")
        return data

    def view(self, start: int, end: int) -> _FileView:
        return _FileView(self.init, self.file, start, end)


class _FileView(io.RawIOBase):
    """The init segment followed by ``file[start:end]``: a fragmented MP4 for FFmpeg, read
    from the file as FFmpeg asks, never copied whole into memory."""

    def __init__(self, init: bytes, file: BinaryIO, start: int, end: int) -> None:
        self._init = init
        self._file = file
        self._start = start
        self._size = len(init) + end - start
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: Any) -> int:
        wanted = min(len(buffer), self._size - self._pos)
        if wanted <= 0:
            return 0
        if self._pos < len(self._init):
            chunk = self._init[self._pos : self._pos + wanted]
        else:
            self._file.seek(self._start + self._pos - len(self._init))
            chunk = self._file.read(wanted)
        buffer[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)


def _in_order(refs: Sequence[SegmentRef]) -> list[SegmentRef]:
    return sorted((r for r in refs if r.keyframes and r.duration_s > 0), key=lambda r: r.start_at)


def _window(refs: Sequence[SegmentRef], start_at: float, end_at: float) -> list[SegmentRef]:
    """The segments with footage in [start_at, end_at), in time order."""
    if end_at <= start_at:
        raise ValueError("the window ends before it starts")
    chosen = [r for r in _in_order(refs) if r.start_at < end_at and r.end_at > start_at]
    if not chosen:
        raise RecordingUnavailable(f"nothing recorded from {_iso(start_at)} to {_iso(end_at)}")
    return chosen


def export_mp4(
    refs: Sequence[SegmentRef], start_at: float, end_at: float, out: Path
) -> ExportFacts:
    """One progressive MP4 (+faststart), not re-encoded, from the keyframe at or before
    ``start_at`` to ``end_at``, across segment boundaries; gaps stay gaps (see the module
    docstring). Stops at a change of codec or picture size, with a note. Raises
    RecordingUnavailable if nothing is recorded in the window; ``out`` is then not left
    behind, nor after any other failure."""
    chosen = _window(refs, start_at, end_at)
    try:
        with ExitStack() as stack:
            writer, notes = _export_into(stack, chosen, start_at, end_at, out)
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    if writer.first_at - start_at > GAP_NOTE_S:
        notes.insert(
            0,
            f"starts {writer.first_at - start_at:.1f} s late: no recording before "
            f"{_iso(writer.first_at)}",
        )
    if end_at - writer.last_end > GAP_NOTE_S and not writer.cut_short:
        notes.append(
            f"ends {end_at - writer.last_end:.1f} s early: no recording after "
            f"{_iso(writer.last_end)}"
        )
    codec, width, height = writer.shape
    return ExportFacts(
        codec=codec,
        width=width,
        height=height,
        frames=writer.frames,
        duration_s=writer.last_end - writer.first_at,
        first_at=writer.first_at,
        note="; ".join(notes) or None,
    )


def _export_into(
    stack: ExitStack, chosen: list[SegmentRef], start_at: float, end_at: float, out: Path
) -> tuple[_ExportWriter, list[str]]:
    notes: list[str] = []
    writer: _ExportWriter | None = None
    after_missing = False  # the gap before this segment is noted already
    any_missing = False
    for index, ref in enumerate(chosen):
        try:
            segment = _Segment(ref)
        except SegmentFileMissing:
            notes.append(
                f"no recording from {_iso(ref.start_at)} to {_iso(ref.end_at)} "
                f"({ref.duration_s:.1f} s, segment file missing, kept as a gap in the timeline)"
            )
            after_missing = any_missing = True
            continue
        stack.callback(segment.close)
        if writer is not None and segment.shape != writer.shape:
            codec, width, height = segment.shape
            notes.append(
                f"ends at {_iso(ref.start_at)}: the video changed to {codec} {width}x{height} "
                "there (export the rest separately)"
            )
            writer.cut_short = True
            break
        shown_at = ref.start_at + ref.keyframes[0][0]
        if writer is not None and shown_at - writer.last_end > GAP_NOTE_S and not after_missing:
            notes.append(
                f"no recording from {_iso(writer.last_end)} to {_iso(shown_at)} "
                f"({shown_at - writer.last_end:.1f} s, kept as a gap in the timeline)"
            )
        after_missing = False
        # A segment may hold more media than its indexed span (the recorder ends a segment
        # at its last packet's arrival when the camera's clock runs fast, so nothing is
        # indexed in the future): its frames past the next segment's start are dropped at
        # the join rather than the next segment shifted to follow, so every frame keeps
        # its wall time (the next segment's start is an arrival time; shifting would carry
        # the surplus into every later frame) and decode times still increase.
        until_at = min(end_at, chosen[index + 1].start_at) if index + 1 < len(chosen) else end_at
        offset = segment.keyframe_offset(start_at - ref.start_at)
        fragments = list(segment.fragments(offset, until_at - ref.start_at))
        if not fragments:
            continue
        end = fragments[-1].offset + fragments[-1].size
        with av.open(segment.view(offset, end), "r", format="mp4", options=OPEN_OPTIONS) as source:
            stream = source.streams.video[0]
            if writer is None:
                writer = stack.enter_context(_ExportWriter(out, stream, segment.shape))
            writer.add(
                source.demux(stream), stream.time_base or OUTPUT_TIME_BASE, ref.start_at, until_at
            )
    if (writer is None or writer.frames == 0) and any_missing:
        raise SegmentFileMissing(_nothing_readable(start_at, end_at))
    if writer is None or writer.frames == 0:
        raise RecordingUnavailable(f"nothing recorded from {_iso(start_at)} to {_iso(end_at)}")
    return writer, notes


class _ExportWriter:
    """The export's MP4: packets placed at their wall time from the first frame's."""

    def __init__(self, out: Path, template: Any, shape: tuple[str, int, int]) -> None:
        self.shape = shape
        # A file, not memory: +faststart (the index first, so players start at once)
        # re-reads the file by name when the muxer finishes.
        self._output = av.open(str(out), "w", format="mp4", options={"movflags": "+faststart"})
        self._stream = self._output.add_stream_from_template(template, opaque=True)
        self._stream.time_base = OUTPUT_TIME_BASE
        self.first_at = 0.0
        self.last_end = 0.0
        self.frames = 0
        self.cut_short = False  # by a change of the video
        self._last_dts: int | None = None

    def __enter__(self) -> _ExportWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._output.close()

    def add(
        self, packets: Iterator[Any], time_base: Fraction, start_at: float, end_at: float
    ) -> None:
        tick_s = float(time_base)  # float arithmetic: Fraction costs more than the muxing
        for packet in packets:
            if packet.size == 0 or packet.dts is None:
                continue
            pts = packet.pts if packet.pts is not None else packet.dts
            dts_at = start_at + packet.dts * tick_s
            if dts_at >= end_at:
                return  # decode order: every frame shown before end_at is in
            pts_at = start_at + pts * tick_s
            if self.frames == 0:
                self.first_at = pts_at
            dts = round((dts_at - self.first_at) * OUTPUT_TICKS_PER_S)
            out_pts = round((pts_at - self.first_at) * OUTPUT_TICKS_PER_S)
            if self._last_dts is not None and dts <= self._last_dts:
                # A segment that starts before the previous one ended: moved after it.
                shift = self._last_dts + 1 - dts
                dts += shift
                out_pts += shift
            self._last_dts = dts
            packet.stream = self._stream
            packet.time_base = OUTPUT_TIME_BASE
            packet.dts, packet.pts = dts, out_pts
            frame_s = (packet.duration or 0) * tick_s
            packet.duration = round(frame_s * OUTPUT_TICKS_PER_S)
            self._output.mux(packet)
            self.frames += 1
            self.last_end = max(
                self.last_end, self.first_at + out_pts / OUTPUT_TICKS_PER_S + frame_s
            )


def _nothing_readable(start_at: float, end_at: float) -> str:
    return (
        f"nothing readable from {_iso(start_at)} to {_iso(end_at)}: "
        "the segment file(s) of that time are missing"
    )


def _shows(ref: SegmentRef, at: float) -> bool:
    delay = ref.keyframes[0][0]
    return ref.start_at + delay - 1e-6 <= at <= ref.end_at + delay


def frame_at(refs: Sequence[SegmentRef], at: float) -> tuple[bytes, int, int, float]:
    """JPEG of the picture shown at ``at``, its width, height and its own epoch time.

    Decodes from the keyframe at or before ``at``, one GOP at most."""
    ordered = _in_order(refs)
    # With B-frames a segment's pictures show a reorder delay (its first keyframe's media
    # time) after its decode timeline: at a boundary, the previous segment's last picture
    # is the one on screen until the next segment's first shows.
    holding = [r for r in ordered if _shows(r, at)]
    holding = holding or [r for r in ordered if r.start_at <= at <= r.end_at]
    if not holding:
        raise RecordingUnavailable(f"nothing recorded at {_iso(at)}")
    ref = holding[-1]
    try:
        segment = _Segment(ref)
    except SegmentFileMissing as exc:
        raise SegmentFileMissing("the segment file holding that moment is missing") from exc
    try:
        media_s = at - ref.start_at
        offset = segment.keyframe_offset(media_s)
        next_keyframe = min((o for _, o in ref.keyframes if o > offset), default=None)
        gop = list(
            itertools.takewhile(
                lambda f: next_keyframe is None or f.offset < next_keyframe,
                segment.fragments(offset, ref.duration_s),
            )
        )
        if not gop:
            raise RecordingUnavailable(f"nothing recorded at {_iso(at)}")
        end = gop[-1].offset + gop[-1].size
        shown: Any = None
        with av.open(segment.view(offset, end), "r", format="mp4", options=OPEN_OPTIONS) as source:
            stream = source.streams.video[0]
            for frame in source.decode(stream):
                if shown is not None and frame.time > media_s + 1e-6:
                    break
                shown = frame
        if shown is None:
            raise RecordingUnavailable(f"the recording at {_iso(at)} does not decode")
        jpeg, width, height = encode_jpeg(shown)
        return jpeg, width, height, ref.start_at + float(shown.time)
    finally:
        segment.close()


def _playable_after(track: TrackInit | None) -> tuple[object, ...] | None:
    """What must not change within one MSE buffer. Parameter sets may (a new connection
    sends its own): every keyframe carries them in band."""
    if track is None:
        return None
    codecs = codec_string(track.codec, parameter_sets_annexb(track.codec, track.config))
    return track.sample_entry, track.width, track.height, track.timescale, codecs


def playback_fmp4(refs: Sequence[SegmentRef], start_at: float, end_at: float) -> PlaybackWindow:
    """Init segment + fragments from the keyframe at or before ``start_at`` to ``end_at``;
    media time 0 is ``first_at``. Ends early at a change of codec, profile or picture size
    (which needs a new init segment): the page asks for the next window from ``end_at``."""
    chosen = _window(refs, start_at, end_at)
    parts: list[bytes | bytearray] = []
    first_at: float | None = None
    placed_end = 0.0
    init: bytes | None = None
    track: TrackInit | None = None
    missing = False
    for ref in chosen:
        try:
            segment = _Segment(ref)
        except SegmentFileMissing:
            # A gap: the next segment is placed at its own start (a segment's length past
            # the last), which the page jumps as it jumps any gap.
            missing = True
            continue
        try:
            if init is None:
                init, track = segment.init, segment.track
                parts.append(init)
            elif _playable_after(segment.track) != _playable_after(track):
                break
            assert track is not None
            scale = track.timescale
            placed = ref.start_at
            if first_at is not None and placed - placed_end <= JOIN_S:
                # (Nearly) touching, or overlapping: carried on. An overlap (a segment
                # holding more media than its indexed span, see export_mp4) shifts this
                # segment to follow, unlike an export, which drops the surplus frames:
                # fragments are passed whole here (only tfdt rewritten), and each window
                # is placed afresh at its own first_at, so the shift never accumulates.
                placed = placed_end
            offset = segment.keyframe_offset(start_at - ref.start_at)
            fragments = list(segment.fragments(offset, end_at - ref.start_at))
            if not fragments:
                continue
            # One read for the segment's part; each fragment's tfdt rewritten in place.
            end = fragments[-1].offset + fragments[-1].size
            data = segment.read(offset, end - offset)
            for at in fragments:
                fragment = at.fragment
                if first_at is None:
                    first_at = placed + fragment.base_dts / scale
                base = round((placed + fragment.base_dts / scale - first_at) * scale)
                write_base_dts(data, at.offset - offset, fragment, base)
                placed_end = first_at + (fragment.end + base - fragment.base_dts) / scale
            parts.append(data)
        finally:
            segment.close()
    if (first_at is None or track is None or init is None) and missing:
        raise SegmentFileMissing(_nothing_readable(start_at, end_at))
    if first_at is None or track is None or init is None:
        raise RecordingUnavailable(f"nothing recorded from {_iso(start_at)} to {_iso(end_at)}")
    parameter_sets = parameter_sets_annexb(track.codec, track.config)
    codecs = codec_string(track.codec, parameter_sets)
    codecs = track.sample_entry + codecs[4:] if codecs else FALLBACK_CODEC_STRING[track.codec]
    return PlaybackWindow(
        mime=f'video/mp4; codecs="{codecs}"',
        first_at=first_at,
        end_at=placed_end,
        data=b"".join(parts),
    )
