"""Just enough H.264/H.265 bitstream reading for pass-through delivery.

Forwarding a camera's packets to a browser without decoding them still needs a few facts
from the bitstream: which NAL units a packet holds (to put parameter sets in front of a
keyframe when the camera only sent them in the SDP), whether it uses B-frames (WebRTC
cannot reorder frames), and the RFC 6381 codec string Media Source Extensions ask for.
References: ITU-T H.264 (7.3.1, 7.3.2.1.1, 7.3.3), ITU-T H.265 (7.3.1.2, 7.3.3),
ISO/IEC 14496-15 (avcC and hvcC layouts, codec strings in Annex E).
"""

from __future__ import annotations

from collections.abc import Iterator

START_CODE = b"\x00\x00\x00\x01"

H264_SPS, H264_PPS, H264_IDR = 7, 8, 5
H265_VPS, H265_SPS, H265_PPS = 32, 33, 34


def split_annexb(data: bytes) -> Iterator[bytes]:
    """NAL units of an Annex B buffer (start codes removed)."""
    start = data.find(b"\x00\x00\x01")
    while start != -1:
        begin = start + 3
        nxt = data.find(b"\x00\x00\x01", begin)
        if nxt == -1:
            yield data[begin:]
            return
        end = nxt - 1 if data[nxt - 1] == 0 else nxt
        yield data[begin:end]
        start = nxt


def is_annexb(data: bytes) -> bool:
    return data.startswith(b"\x00\x00\x01") or data.startswith(START_CODE)


def nal_type(codec: str, nal: bytes) -> int:
    if not nal:
        return -1
    return (nal[0] >> 1) & 0x3F if codec == "hevc" else nal[0] & 0x1F


def parameter_sets_annexb(codec: str, extradata: bytes | None) -> bytes:
    """The parameter sets of an extradata blob (Annex B, avcC or hvcC) as Annex B."""
    if not extradata:
        return b""
    if is_annexb(extradata):
        return extradata
    nals = _avcc_parameter_sets(extradata) if codec == "h264" else _hvcc_parameter_sets(extradata)
    return b"".join(START_CODE + nal for nal in nals)


def _avcc_parameter_sets(avcc: bytes) -> list[bytes]:
    nals: list[bytes] = []
    pos = 5
    for group in range(2):  # SPS group, then PPS group
        if pos >= len(avcc):
            break
        count = avcc[pos] & (0x1F if group == 0 else 0xFF)
        pos += 1
        for _ in range(count):
            size = int.from_bytes(avcc[pos : pos + 2], "big")
            nals.append(avcc[pos + 2 : pos + 2 + size])
            pos += 2 + size
    return nals


def _hvcc_parameter_sets(hvcc: bytes) -> list[bytes]:
    nals: list[bytes] = []
    if len(hvcc) < 23:
        return nals
    pos = 23
    for _ in range(hvcc[22]):
        pos += 1  # array_completeness, NAL unit type
        count = int.from_bytes(hvcc[pos : pos + 2], "big")
        pos += 2
        for _ in range(count):
            size = int.from_bytes(hvcc[pos : pos + 2], "big")
            nals.append(hvcc[pos + 2 : pos + 2 + size])
            pos += 2 + size
    return nals


def with_parameter_sets(codec: str, data: bytes, parameter_sets: bytes) -> bytes:
    """Put parameter sets in front of a keyframe that lacks them (SDP-only cameras)."""
    sps = H265_SPS if codec == "hevc" else H264_SPS
    if not parameter_sets or any(nal_type(codec, nal) == sps for nal in split_annexb(data)):
        return data
    return parameter_sets + data


def find_nal(codec: str, data: bytes, wanted: int) -> bytes | None:
    for nal in split_annexb(data):
        if nal_type(codec, nal) == wanted:
            return nal
    return None


def unescape_rbsp(nal: bytes) -> bytes:
    """Remove emulation-prevention bytes (00 00 03 -> 00 00)."""
    return nal.replace(b"\x00\x00\x03", b"\x00\x00")


class BitReader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def bit(self) -> int:
        byte = self._data[self._pos >> 3] if (self._pos >> 3) < len(self._data) else 0
        value = (byte >> (7 - (self._pos & 7))) & 1
        self._pos += 1
        return value

    def bits(self, count: int) -> int:
        value = 0
        for _ in range(count):
            value = (value << 1) | self.bit()
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bit() == 0 and zeros < 32:
            zeros += 1
        return (1 << zeros) - 1 + self.bits(zeros)


def h264_slice_is_b(nal: bytes) -> bool:
    """True for a coded slice whose slice_type is B (5-to-9 aliases included)."""
    if nal_type("h264", nal) not in (1, 5):
        return False
    reader = BitReader(unescape_rbsp(nal[1:8]))
    reader.ue()  # first_mb_in_slice
    return reader.ue() % 5 == 1


def packet_has_b_slices(codec: str, data: bytes) -> bool:
    """Whether an H.264 packet carries B slices (H.265: see :func:`h265_slice_type`)."""
    if codec != "h264":
        return False
    return any(h264_slice_is_b(nal) for nal in split_annexb(data))


H265_B_SLICE = 0  # H.265 7.4.7.1 slice_type: 0 B, 1 P, 2 I
_H265_IRAP = range(16, 24)  # BLA_W_LP .. RSV_IRAP_VCL23: they carry no_output_of_prior_pics_flag


def h265_pps_extra_slice_header_bits(nal: bytes) -> tuple[int, int]:
    """(pps_pic_parameter_set_id, num_extra_slice_header_bits) of an H.265 PPS NAL unit
    (H.265 7.3.2.3.1): what a slice header needs from its PPS before its slice_type."""
    reader = BitReader(unescape_rbsp(nal[2:16]))
    pps_id = reader.ue()
    reader.ue()  # pps_seq_parameter_set_id
    reader.bit()  # dependent_slice_segments_enabled_flag
    reader.bit()  # output_flag_present_flag
    return pps_id, reader.bits(3)


def h265_slice_type(nal: bytes, extra_bits_by_pps: dict[int, int]) -> int | None:
    """slice_type of the *first* slice segment of an H.265 picture (H.265 7.3.6.1); None
    for any other NAL unit, for a later segment of a picture, or when its PPS is unknown.

    Why only the first: a later segment's header has slice_segment_address, whose width
    comes from the SPS picture size in CTBs (a parse of the whole SPS), before slice_type;
    every picture has a first segment, and its PPS gives the one field needed before
    slice_type (``num_extra_slice_header_bits``)."""
    kind = nal_type("hevc", nal)
    if not (0 <= kind <= 9 or 16 <= kind <= 21):  # coded slice segments (Table 7-1)
        return None
    reader = BitReader(unescape_rbsp(nal[2:16]))
    if not reader.bit():  # first_slice_segment_in_pic_flag
        return None
    if kind in _H265_IRAP:
        reader.bit()  # no_output_of_prior_pics_flag
    extra_bits = extra_bits_by_pps.get(reader.ue())  # slice_pic_parameter_set_id
    if extra_bits is None:
        return None
    reader.bits(extra_bits)  # slice_reserved_flag[i]
    return reader.ue()


def codec_string(codec: str, parameter_sets: bytes) -> str | None:
    """RFC 6381 codec string for MSE (``avc1.64001f``, ``hvc1.1.6.L93.B0``), from the SPS."""
    if codec == "h264":
        sps = find_nal("h264", parameter_sets, H264_SPS)
        if sps is None or len(sps) < 4:
            return None
        return f"avc1.{sps[1]:02x}{sps[2]:02x}{sps[3]:02x}"
    sps = find_nal("hevc", parameter_sets, H265_SPS)
    if sps is None:
        return None
    reader = BitReader(unescape_rbsp(sps[2:]))
    reader.bits(4)  # sps_video_parameter_set_id
    reader.bits(3)  # sps_max_sub_layers_minus1
    reader.bits(1)  # sps_temporal_id_nesting_flag
    profile_space = reader.bits(2)
    tier = reader.bits(1)
    profile_idc = reader.bits(5)
    compat = reader.bits(32)
    constraints = [reader.bits(8) for _ in range(6)]
    level = reader.bits(8)
    # Compatibility flags are written bit-reversed, in hex, without leading zeros.
    reversed_compat = int(f"{compat:032b}"[::-1], 2)
    space = "" if profile_space == 0 else "ABC"[profile_space - 1]
    while constraints and constraints[-1] == 0:
        constraints.pop()
    tail = "".join(f".{c:X}" for c in constraints)
    return f"hvc1.{space}{profile_idc}.{reversed_compat:X}.{'H' if tier else 'L'}{level}{tail}"
