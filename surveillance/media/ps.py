"""The MPEG program stream a GB/T 28181 platform sends, cut into video access units.

GB/T 28181-2016 Annex C carries video as an MPEG-2 program stream (ISO/IEC 13818-1 s.2.5):
pack headers (00 00 01 BA), a system header (BB), a program stream map (BC) naming each
elementary stream's type, and PES packets (E0-EF video). The RTP payloads, in order, are
that byte stream cut anywhere; this demuxer follows it across the cuts.

Access units: a PES that carries a PTS other than the unit being built starts a new unit
(platforms send one PES per frame, or split a large frame over several PES with the same
PTS, as GStreamer's mpegpsmux does above 64 KB); a unit is complete when the next one
starts. The payload of a PES in progress costs one list append per RTP packet; a unit's
pieces are joined once.

Bad input is skipped, never trusted: bytes that are not a program stream structure are
skipped to the next start code, a unit that does not begin at a NAL start code or grows
beyond ``max_unit_bytes`` is dropped, and each such event counts in ``errors``. After a
loss (:meth:`PsDemuxer.lost`) the demuxer waits for the next pack header or video PES
header: neither can occur inside H.264/H.265 payload, whose emulation prevention rules out
00 00 01 followed by a byte with the forbidden zero bit set (H.264 s.7.4.1, H.265 s.7.4.2).
"""

from __future__ import annotations

from dataclasses import dataclass

START = b"\x00\x00\x01"
PACK = 0xBA
END = 0xB9
MAP = 0xBC
# ISO/IEC 13818-1 Table 2-34 stream types GB/T 28181-2016 Annex C names for video.
STREAM_TYPES = {0x1B: "h264", 0x24: "hevc"}
PSM_MAX_BYTES = 1024  # ISO/IEC 13818-1 s.2.5.4.2: program_stream_map_length <= 0x3FA
PTS_MASK = (1 << 33) - 1
PTS_HALF = 1 << 32
# NALs looked at per unit for its codec and keyframe flag: parameter sets, SEI and an AUD
# come before the first slice; a unit without a slice among this many is not a picture.
NALS_SCANNED = 16
_H264_VCL = range(1, 6)
_H264_IDR = 5
_H264_SNIFF = frozenset({5, 7, 8, 9})  # IDR, SPS, PPS, AUD: what a stream starts with
_H265_VCL = range(32)
_H265_IRAP = range(16, 24)  # H.265 s.7.4.2.2: BLA, IDR, CRA (and reserved IRAP)
_H265_SNIFF = frozenset({32, 33, 34, 35})  # VPS, SPS, PPS, AUD
_AUD = {"h264": 9, "hevc": 35}


@dataclass(frozen=True, slots=True)
class AccessUnit:
    codec: str  # "h264" or "hevc"
    data: bytes  # Annex B
    pts: int | None  # 90 kHz, unwrapped past 2**33
    dts: int | None
    keyframe: bool


def _timestamp(data: bytes, at: int) -> int:
    """A 33-bit PTS or DTS in its 5-byte PES form (ISO/IEC 13818-1 s.2.4.3.7)."""
    return (
        ((data[at] >> 1) & 0x07) << 30
        | (data[at + 1] << 22)
        | ((data[at + 2] >> 1) << 15)
        | (data[at + 3] << 7)
        | (data[at + 4] >> 1)
    )


def sniff_codec(nal_header: bytes) -> str | None:
    """The codec a NAL's first two bytes show, for a stream without a PSM; None if unsure.

    Only NALs a stream starts with decide (parameter sets, AUD, H.264 IDR): H.265's are
    0x40-0x46 followed by 0x01 (layer 0, temporal id 1), which as H.264 would be NAL types
    0, 2, 4 and 6 with nal_ref_idc 2, none of which is a stream's start."""
    if len(nal_header) < 2 or nal_header[0] & 0x80:
        return None
    first = nal_header[0]
    if (first >> 1) & 0x3F in _H265_SNIFF and nal_header[1] == 1:
        return "hevc"
    if first & 0x1F in _H264_SNIFF:
        return "h264"
    return None


class PsDemuxer:
    def __init__(self, max_unit_bytes: int = 8 * 1024 * 1024) -> None:
        self.max_unit_bytes = max_unit_bytes
        self.codec: str | None = None  # from the PSM, or sniffed from NAL headers without one
        self.stream_type: int | None = None  # the PSM's video stream type, when it gave one
        self.errors = 0
        self._pending = b""  # the start of a structure whose header is not complete yet
        self._left = 0  # bytes of the current PES payload still to come
        self._keep = False  # whether those bytes are video (else skipped)
        self._parts: list[bytes] | None = None  # the unit being built; None: dropping
        self._size = 0
        self._pts: int | None = None  # of the unit being built (raw 33 bits)
        self._dts: int | None = None
        self._unit_codec: str | None = None
        self._resync = False  # after a loss: skip to the next pack or video PES header
        self._skipping = False  # skipping bytes that are not a structure (counted once)
        self._reference: int | None = None  # the last unwrapped timestamp

    def feed(self, data: bytes) -> list[AccessUnit]:
        """The access units completed by ``data``, the next RTP payload."""
        left = self._left
        if left:
            size = len(data)
            if size <= left:  # the fast path: the middle of a PES
                self._left = left - size
                if self._keep:
                    self._take(data)
                return []
            if self._keep:
                self._take(data[:left])
            data = data[left:]
            self._left = 0
        if self._pending:
            data = self._pending + data
            self._pending = b""
        return self._parse(data)

    def lost(self) -> None:
        """Data went missing before the next payload: drop the unit being built and wait for
        the next pack or video PES header."""
        self._parts = None
        self._left = 0
        self._pending = b""
        self._resync = True

    # -- structures -----------------------------------------------------------------------
    def _parse(self, data: bytes) -> list[AccessUnit]:
        out: list[AccessUnit] = []
        pos, end = 0, len(data)
        while end - pos >= 4:
            if not data.startswith(START, pos):
                pos = self._skip_to_start(data, pos)
                continue
            code = data[pos + 3]
            is_video = 0xE0 <= code <= 0xEF
            if self._resync and code != PACK and not is_video:
                pos += 3  # left from before the loss: not to be trusted
                continue
            if code < END:
                pos = self._skip_to_start(data, pos + 3)  # a NAL start: not a PS structure
                continue
            self._skipping = False
            if code == PACK:
                size = self._pack_size(data, pos)
                if size is None:
                    self.errors += 1
                    pos += 4
                    continue
                if end - pos < size:
                    break
                self._resync = False
                pos += size
                continue
            if code == END:
                pos += 4
                continue
            if end - pos < 6:
                break
            length = (data[pos + 4] << 8) | data[pos + 5]
            if code == MAP:
                if length > PSM_MAX_BYTES:
                    self.errors += 1
                    pos += 4
                    continue
                if end - pos < 6 + length:
                    break
                self._map(data[pos + 6 : pos + 6 + length])
                pos += 6 + length
                continue
            if is_video:
                taken = self._video(data, pos, length, out)
                if taken is None:
                    break
                pos = taken
                continue
            # Another stream (audio, private, padding, system header): skipped whole.
            take = min(length, end - pos - 6)
            pos += 6 + take
            self._left, self._keep = length - take, False
        if pos < end:
            self._pending = data[pos:]
        return out

    def _skip_to_start(self, data: bytes, pos: int) -> int:
        """Where the next start code is, counting the bytes skipped as one error."""
        if not self._skipping and not self._resync:
            self.errors += 1
            self._skipping = True
        found = data.find(START, pos)
        # A start code may straddle this payload and the next: keep the last two bytes.
        return found if found >= 0 else max(pos, len(data) - 2)

    @staticmethod
    def _pack_size(data: bytes, pos: int) -> int | None:
        """A pack header's size: MPEG-2 (s.2.5.3.3, with stuffing) or MPEG-1 (12 bytes)."""
        if len(data) - pos < 14:
            return 14  # not complete yet: ask for the fixed part
        marker = data[pos + 4]
        if marker >> 6 == 0b01:
            return 14 + (data[pos + 13] & 0x07)
        if marker >> 4 == 0b0010:
            return 12
        return None

    def _map(self, body: bytes) -> None:
        """The program stream map (ISO/IEC 13818-1 s.2.5.4.1): the video stream's type."""
        if len(body) < 10:
            self.errors += 1
            return
        info_length = (body[2] << 8) | body[3]
        at = 4 + info_length
        if at + 2 > len(body):
            self.errors += 1
            return
        map_end = min(len(body) - 4, at + 2 + ((body[at] << 8) | body[at + 1]))  # before CRC
        at += 2
        while at + 4 <= map_end:
            stream_type, stream_id = body[at], body[at + 1]
            if 0xE0 <= stream_id <= 0xEF:
                self.stream_type = stream_type
                # A codec change comes into effect with the next unit (_video takes it).
                self.codec = STREAM_TYPES.get(stream_type)
                return
            at += 4 + ((body[at + 2] << 8) | body[at + 3])

    def _video(self, data: bytes, pos: int, length: int, out: list[AccessUnit]) -> int | None:
        """Take a video PES header at ``pos`` and what of its payload is here; where parsing
        goes on, or None if the header (or its first payload bytes) is not all here yet."""
        end = len(data)
        if end - pos < 9:
            return None
        header_length = data[pos + 8]
        payload = length - 3 - header_length
        if data[pos + 6] & 0xC0 != 0x80 or payload < 0:
            # Not an MPEG-2 PES header (s.2.4.3.6), or a length shorter than its header.
            self.errors += 1
            self._parts = None
            return pos + 4
        start = pos + 9 + header_length
        if end - start < min(payload, 4):
            return None
        flags = data[pos + 7] >> 6
        pts = dts = None
        if flags & 0b10 and header_length >= 5:
            pts = dts = _timestamp(data, pos + 9)
            if flags == 0b11 and header_length >= 10:
                dts = _timestamp(data, pos + 14)
        self._resync = False
        head = data[start : start + 5]
        if (pts is not None and pts != self._pts) or (pts is None and self._is_aud(head)):
            self._start_unit(pts, dts, head, out)
        take = min(payload, end - start)
        self._left, self._keep = payload - take, True
        if take:
            self._take(data[start : start + take])
        return start + take

    def _is_aud(self, head: bytes) -> bool:
        """Whether a PES without PTS begins a unit: its payload starts with an AUD."""
        if head.startswith(START):
            nal = head[3:4]
        elif head.startswith(b"\x00" + START):
            nal = head[4:5]
        else:
            return False
        if not nal:
            return False
        if self.codec == "hevc":
            return (nal[0] >> 1) & 0x3F == _AUD["hevc"]
        return nal[0] & 0x1F == _AUD["h264"]

    # -- units ------------------------------------------------------------------------------
    def _start_unit(
        self, pts: int | None, dts: int | None, head: bytes, out: list[AccessUnit]
    ) -> None:
        if self._parts:
            unit = self._finish()
            if unit is not None:
                out.append(unit)
        self._pts, self._dts = pts, dts
        if head.startswith(START) or head.startswith(b"\x00" + START):
            self._parts, self._size, self._unit_codec = [], 0, self.codec
        else:
            # Not at a NAL start: the unit's beginning went missing; the rest is useless.
            self._parts = None
            self.errors += 1

    def _take(self, piece: bytes) -> None:
        parts = self._parts
        if parts is None:
            return
        parts.append(piece)
        self._size += len(piece)
        if self._size > self.max_unit_bytes:
            self._parts = None
            self.errors += 1

    def _finish(self) -> AccessUnit | None:
        parts = self._parts
        assert parts
        self._parts = None
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        codec = self._unit_codec
        keyframe = False
        pos = data.find(START)
        for _ in range(NALS_SCANNED):
            if pos < 0:
                break
            header = data[pos + 3 : pos + 5]
            if codec is None and self.stream_type is None:
                codec = self.codec = sniff_codec(header)
            if header and codec is not None:
                if codec == "h264":
                    kind = header[0] & 0x1F
                    if kind in _H264_VCL:
                        keyframe = kind == _H264_IDR
                        break
                else:
                    kind = (header[0] >> 1) & 0x3F
                    if kind in _H265_VCL:
                        keyframe = kind in _H265_IRAP
                        break
            pos = data.find(START, pos + 3)
        if codec is None:
            return None  # no PSM, nothing to tell the codec by, or one not supported
        return AccessUnit(codec, data, self._unwrap(self._pts), self._unwrap(self._dts), keyframe)

    def _unwrap(self, timestamp: int | None) -> int | None:
        """A 33-bit timestamp carried on past its wrap (every 26.5 hours at 90 kHz), by the
        nearest value to the last one (B-frames make PTS go back a little)."""
        if timestamp is None:
            return None
        reference = self._reference
        if reference is None:
            self._reference = timestamp
            return timestamp
        delta = (timestamp - reference) & PTS_MASK
        if delta >= PTS_HALF:
            delta -= PTS_MASK + 1
        self._reference = reference + delta
        return reference + delta
