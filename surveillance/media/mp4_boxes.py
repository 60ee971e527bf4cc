"""Just enough ISO BMFF (MP4) box reading for fragmented recording files.

A recording segment is ``ftyp`` + ``moov`` (the init segment, no samples) followed by
``moof`` + ``mdat`` pairs. Its writer, its salvage after a crash and its readers need the
same facts of each fragment (where it starts, its samples' times, whether it starts with a
keyframe) without demuxing the media, and the track's codec, size and parameter sets from
the init segment. References: ISO/IEC 14496-12 (8.8 movie fragments: ``tfhd``, ``tfdt``,
``trun``, ``trex``; 8.4.2 ``mdhd``; 8.5.2 visual sample entry), ISO/IEC 14496-15 (``avcC``,
``hvcC``).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

# Boxes that only hold other boxes, on the way to the ones read here.
_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"mvex", b"moof", b"traf"}
_SAMPLE_ENTRIES = {b"avc1": "h264", b"avc3": "h264", b"hvc1": "hevc", b"hev1": "hevc"}
_VISUAL_SAMPLE_ENTRY_BYTES = 78  # after the box header: SampleEntry (8) + VisualSampleEntry (70)
# Sample flags (14496-12 8.8.3.1): sample_is_non_sync_sample.
_NON_SYNC = 0x00010000


class MemorySink(io.RawIOBase):
    """Where FFmpeg's MP4 muxer writes (PyAV's file object): memory, which the writer cuts
    into top-level boxes as they complete."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.data += b
        return len(b)


class Mp4Error(ValueError):
    """The bytes are not the fragmented MP4 this module expects."""


def iter_boxes(
    data: bytes | memoryview, start: int = 0, end: int | None = None
) -> Iterator[tuple[bytes, int, int, int]]:
    """(type, offset, header size, total size) of each box in ``data[start:end]``.

    Stops at a box that does not fit (the caller decides whether that is an error).
    """
    end = len(data) if end is None else end
    at = start
    while at + 8 <= end:
        size = int.from_bytes(data[at : at + 4], "big")
        kind = bytes(data[at + 4 : at + 8])
        header = 8
        if size == 1:
            if at + 16 > end:
                return
            size = int.from_bytes(data[at + 8 : at + 16], "big")
            header = 16
        elif size == 0:
            size = end - at
        if size < header or at + size > end:
            return
        yield kind, at, header, size
        at += size


def _child(
    data: bytes, path: list[bytes], start: int = 0, end: int | None = None
) -> tuple[int, int] | None:
    """(payload start, payload end) of the box at ``path`` (first match at each level)."""
    for kind, at, header, size in iter_boxes(data, start, end):
        if kind == path[0]:
            if len(path) == 1:
                return at + header, at + size
            return _child(data, path[1:], at + header, at + size)
    return None


@dataclass(frozen=True)
class TrackInit:
    """What the init segment (``ftyp`` + ``moov``) says of the one video track."""

    codec: str  # "h264" | "hevc"
    sample_entry: str  # its four-character code: avc1, avc3, hvc1 or hev1
    width: int
    height: int
    timescale: int
    config: bytes  # the avcC / hvcC payload (parameter sets)
    default_duration: int  # trex defaults: used when a fragment gives none
    default_flags: int


def parse_init(init: bytes) -> TrackInit:
    mdhd = _child(init, [b"moov", b"trak", b"mdia", b"mdhd"])
    stsd = _child(init, [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"])
    if mdhd is None or stsd is None:
        raise Mp4Error("no video track in the init segment")
    version = init[mdhd[0]]
    timescale_at = mdhd[0] + (20 if version == 1 else 12)
    timescale = int.from_bytes(init[timescale_at : timescale_at + 4], "big")
    entries = list(iter_boxes(init, stsd[0] + 8, stsd[1]))  # full box header + entry_count
    if not entries or entries[0][0] not in _SAMPLE_ENTRIES:
        raise Mp4Error("the track is neither H.264 nor H.265")
    kind, at, header, size = entries[0]
    body = at + header
    width = int.from_bytes(init[body + 24 : body + 26], "big")
    height = int.from_bytes(init[body + 26 : body + 28], "big")
    config = b""
    for child, child_at, child_header, child_size in iter_boxes(
        init, body + _VISUAL_SAMPLE_ENTRY_BYTES, at + size
    ):
        if child in (b"avcC", b"hvcC"):
            config = init[child_at + child_header : child_at + child_size]
    trex = _child(init, [b"moov", b"mvex", b"trex"])
    defaults = (0, 0)
    if trex is not None:
        # After version/flags, track_ID, sample description index: duration, size, flags.
        fields = init[trex[0] + 12 : trex[0] + 24]
        defaults = (int.from_bytes(fields[0:4], "big"), int.from_bytes(fields[8:12], "big"))
    return TrackInit(
        _SAMPLE_ENTRIES[kind], kind.decode(), width, height, timescale, config, *defaults
    )


@dataclass(frozen=True)
class Fragment:
    """One ``moof``'s samples, in decode order, in the track's timescale."""

    base_dts: int  # tfdt
    tfdt_at: int  # offset of the tfdt value inside the moof (to rewrite it)
    tfdt_bytes: int  # 4 or 8
    dts: tuple[int, ...]
    pts: tuple[int, ...]
    durations: tuple[int, ...]
    sync: tuple[bool, ...]

    @property
    def frames(self) -> int:
        return len(self.dts)

    @property
    def starts_with_keyframe(self) -> bool:
        return bool(self.sync) and self.sync[0]

    @property
    def end(self) -> int:
        """Where its decode timeline ends: the next fragment's decode time. Over whole GOPs
        this is also where its last shown frame ends (with B-frames, the frames shown last
        are decoded earlier; the pictures' span is the same)."""
        return self.base_dts + sum(self.durations)


def parse_moof(moof: bytes, track: TrackInit) -> Fragment:
    """The samples of a ``moof`` box (the whole box, header included) of a single-track file."""
    traf = _child(moof, [b"moof", b"traf"])
    if traf is None:
        raise Mp4Error("moof without traf")
    duration, flags = track.default_duration, track.default_flags
    base_dts, tfdt_at, tfdt_bytes = 0, -1, 0
    dts: list[int] = []
    pts: list[int] = []
    durations: list[int] = []
    sync: list[bool] = []
    for kind, at, header, _box_size in iter_boxes(moof, traf[0], traf[1]):
        body = at + header
        if kind == b"tfhd":
            tf_flags = int.from_bytes(moof[body + 1 : body + 4], "big")
            pos = body + 8  # version/flags, track_ID
            if tf_flags & 0x01:
                pos += 8  # base_data_offset
            if tf_flags & 0x02:
                pos += 4  # sample_description_index
            if tf_flags & 0x08:
                duration = int.from_bytes(moof[pos : pos + 4], "big")
                pos += 4
            if tf_flags & 0x10:
                pos += 4  # default_sample_size: sizes are not needed
            if tf_flags & 0x20:
                flags = int.from_bytes(moof[pos : pos + 4], "big")
        elif kind == b"tfdt":
            tfdt_bytes = 8 if moof[body] == 1 else 4
            tfdt_at = body + 4
            base_dts = int.from_bytes(moof[tfdt_at : tfdt_at + tfdt_bytes], "big")
        elif kind == b"trun":
            version = moof[body]
            tr_flags = int.from_bytes(moof[body + 1 : body + 4], "big")
            count = int.from_bytes(moof[body + 4 : body + 8], "big")
            pos = body + 8
            if tr_flags & 0x01:
                pos += 4  # data_offset
            first_flags = None
            if tr_flags & 0x04:
                first_flags = int.from_bytes(moof[pos : pos + 4], "big")
                pos += 4
            at_dts = base_dts + sum(durations)
            for index in range(count):
                sample_duration, sample_flags, offset = duration, flags, 0
                if tr_flags & 0x100:
                    sample_duration = int.from_bytes(moof[pos : pos + 4], "big")
                    pos += 4
                if tr_flags & 0x200:
                    pos += 4  # sample_size: not needed
                if tr_flags & 0x400:
                    sample_flags = int.from_bytes(moof[pos : pos + 4], "big")
                    pos += 4
                if tr_flags & 0x800:
                    offset = int.from_bytes(moof[pos : pos + 4], "big", signed=version == 1)
                    pos += 4
                if index == 0 and first_flags is not None:
                    sample_flags = first_flags
                dts.append(at_dts)
                pts.append(at_dts + offset)
                durations.append(sample_duration)
                sync.append(not sample_flags & _NON_SYNC)
                at_dts += sample_duration
    if tfdt_at < 0:
        raise Mp4Error("moof without tfdt")
    return Fragment(
        base_dts, tfdt_at, tfdt_bytes, tuple(dts), tuple(pts), tuple(durations), tuple(sync)
    )


def write_base_dts(buffer: bytearray, moof_at: int, fragment: Fragment, base_dts: int) -> None:
    """Set the ``tfdt`` of the fragment whose ``moof`` is at ``buffer[moof_at]`` to
    ``base_dts`` (sample data offsets are relative to the moof: nothing else moves)."""
    if base_dts < 0 or base_dts >= 1 << (8 * fragment.tfdt_bytes):
        raise Mp4Error(f"decode time {base_dts} does not fit the tfdt")
    at = moof_at + fragment.tfdt_at
    buffer[at : at + fragment.tfdt_bytes] = base_dts.to_bytes(fragment.tfdt_bytes, "big")


@dataclass(frozen=True)
class FragmentAt:
    offset: int  # of its moof in the file
    size: int  # moof + mdat
    moof: bytes
    fragment: Fragment


def read_box_header(file: BinaryIO) -> tuple[bytes, int, int] | None:
    """(type, header size, total size) of the box at the file's position, or None at a
    header that is cut short. The position is left after the header."""
    head = file.read(8)
    if len(head) < 8:
        return None
    size = int.from_bytes(head[:4], "big")
    kind = head[4:8]
    header = 8
    if size == 1:
        large = file.read(8)
        if len(large) < 8:
            return None
        size = int.from_bytes(large, "big")
        header = 16
    return kind, header, size


def read_init(file: BinaryIO) -> bytes:
    """``ftyp`` + ``moov`` from the start of a segment file."""
    file.seek(0)
    parts: list[bytes] = []
    while True:
        at = file.tell()
        box = read_box_header(file)
        if box is None:
            raise Mp4Error("the file ends inside its init segment")
        kind, _, size = box
        if kind not in (b"ftyp", b"moov"):
            raise Mp4Error(f"unexpected {kind!r} box in the init segment")
        file.seek(at)
        data = file.read(size)
        if len(data) < size:
            raise Mp4Error("the file ends inside its init segment")
        parts.append(data)
        if kind == b"moov":
            return b"".join(parts)


def iter_fragments(
    file: BinaryIO, track: TrackInit, start: int, limit: int | None = None
) -> Iterator[FragmentAt]:
    """Whole ``moof`` + ``mdat`` pairs from ``start``; stops at the first one cut short (or
    past ``limit`` bytes of file), so a file still being written or cut by a crash reads
    as its whole fragments. Reads the moofs only; mdat payloads are skipped."""
    end = limit if limit is not None else file.seek(0, 2)
    at = start
    while at < end:
        file.seek(at)
        box = read_box_header(file)
        if box is None or box[0] != b"moof" or at + box[2] > end:
            return
        moof_size = box[2]
        file.seek(at)
        moof = file.read(moof_size)
        mdat_at = at + moof_size
        file.seek(mdat_at)
        mdat = read_box_header(file)
        if mdat is None or mdat[0] != b"mdat" or mdat_at + mdat[2] > end:
            return
        fragment = parse_moof(moof, track)
        yield FragmentAt(at, moof_size + mdat[2], moof, fragment)
        at = mdat_at + mdat[2]
