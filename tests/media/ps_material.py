"""Program streams and RTP for the GB/T 28181 media tests, made from the simulator's clips.

H.264: GStreamer's ``mpegpsmux`` (the real muxer) over a cached clip, cached beside it.
H.265 and the faults no real muxer makes on request (no PSM, a codec change, timestamps
near the 33-bit wrap): :func:`write_ps`, a minimal muxer written here from ISO/IEC 13818-1
s.2.5 (pack header, PSM, PES); the tests check FFmpeg reads what it writes, so it is held to
the standard by an implementation other than the demuxer under test.
"""

from __future__ import annotations

import os
import struct
import subprocess
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from av.bitstream import BitStreamFilterContext

from surveillance.simulator import ClipSpec, ensure_clip

STREAM_TYPE_H264 = 0x1B  # ISO/IEC 13818-1 Table 2-34
STREAM_TYPE_HEVC = 0x24
PES_MAX_PAYLOAD = 65_000  # PES_packet_length is 16 bits


@dataclass(frozen=True)
class Unit:
    """An access unit of a clip, as FFmpeg reads it: Annex B, 90 kHz timestamps."""

    data: bytes
    pts: int
    dts: int
    keyframe: bool


def mpegpsmux_file(spec: ClipSpec, cache_dir: Path) -> Path:
    """The clip muxed into a program stream by ``gst-launch-1.0 ... mpegpsmux`` (cached)."""
    clip = ensure_clip(spec, cache_dir)
    path = cache_dir / f"{spec.key()}-mpegpsmux.ps"
    if path.exists():
        return path
    tmp = cache_dir / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        subprocess.run(
            ["gst-launch-1.0", "-q", "filesrc", f"location={clip}", "!", "qtdemux", "!",
             "h264parse", "!", "mpegpsmux", "!", "filesink", f"location={tmp}"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def clip_units(clip: Path) -> list[Unit]:
    """The access units of an MP4 clip in Annex B, as a camera's encoder sends them."""
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        name = stream.codec_context.name
        annexb = BitStreamFilterContext(f"{name}_mp4toannexb", stream)
        time_base = stream.time_base or Fraction(1, 90_000)
        packets = [p for p in container.demux(stream) if p.size]
        filtered = [out for p in packets for out in annexb.filter(p)] + annexb.filter(None)
        units = []
        for packet in filtered:
            assert packet.pts is not None and packet.dts is not None
            pts = round(packet.pts * time_base * 90_000) + 90_000
            dts = round(packet.dts * time_base * 90_000) + 90_000
            units.append(Unit(bytes(packet), pts, dts, bool(packet.is_keyframe)))
        return units


def ffmpeg_units(path: Path) -> tuple[str, list[Unit]]:
    """The codec and packets FFmpeg's MPEG-PS demuxer reads from ``path``."""
    with av.open(str(path), format="mpeg") as container:
        stream = container.streams.video[0]
        units = []
        for packet in container.demux(stream):
            if packet.size:
                assert packet.pts is not None and packet.dts is not None
                units.append(Unit(bytes(packet), packet.pts, packet.dts, packet.is_keyframe))
        return stream.codec_context.name, units


def write_ps(
    units: Iterable[Unit],
    stream_type: int | None = STREAM_TYPE_HEVC,
    *,
    repeat_pts: bool = False,
    pts_offset: int = 0,
    pes_max: int = PES_MAX_PAYLOAD,
) -> bytes:
    """A program stream of ``units``: a pack header before each, a PSM before each keyframe
    (none when ``stream_type`` is None), PES packets of at most 65000 bytes. A unit split
    over several PES has its PTS on the first only, or on each with ``repeat_pts`` (as
    mpegpsmux does). ``pts_offset`` is added to every timestamp, mod 2**33."""
    return b"".join(_packs(units, stream_type, repeat_pts, pts_offset, pes_max))


def _packs(
    units: Iterable[Unit],
    stream_type: int | None,
    repeat_pts: bool,
    pts_offset: int,
    pes_max: int,
) -> Iterator[bytes]:
    for unit in units:
        pts, dts = (unit.pts + pts_offset) % (1 << 33), (unit.dts + pts_offset) % (1 << 33)
        yield pack_header(dts)
        if unit.keyframe and stream_type is not None:
            yield program_stream_map(stream_type)
        for start in range(0, len(unit.data), pes_max):
            timed = start == 0 or repeat_pts
            yield pes(unit.data[start : start + pes_max], pts if timed else None, dts)


def pack_header(scr: int) -> bytes:
    """ISO/IEC 13818-1 s.2.5.3.3, two bytes of stuffing (which a reader must skip)."""
    bits = (
        (0b01 << 46)
        | (((scr >> 30) & 0x7) << 43)
        | (1 << 42)
        | (((scr >> 15) & 0x7FFF) << 27)
        | (1 << 26)
        | ((scr & 0x7FFF) << 11)
        | (1 << 10)
        | 1
    )
    mux_rate = (50_000 << 2) | 0b11
    return (
        b"\x00\x00\x01\xba" + bits.to_bytes(6, "big") + mux_rate.to_bytes(3, "big")
        + bytes([0xF8 | 2]) + b"\xff\xff"
    )  # fmt: skip


def program_stream_map(stream_type: int) -> bytes:
    """ISO/IEC 13818-1 s.2.5.4.1: one video stream (E0), a descriptor-free entry, CRC-32."""
    entries = bytes([stream_type, 0xE0]) + b"\x00\x00"
    body = b"\x80\x01" + b"\x00\x00" + struct.pack(">H", len(entries)) + entries
    head = b"\x00\x00\x01\xbc" + struct.pack(">H", len(body) + 4)
    return head + body + struct.pack(">I", crc32_mpeg(head + body))


def pes(payload: bytes, pts: int | None, dts: int) -> bytes:
    """ISO/IEC 13818-1 s.2.4.3.6: a video PES with PTS (and DTS when it differs), or none."""
    if pts is None:
        fields, flags = b"", 0
    elif dts != pts:
        fields, flags = _timestamp(0b0011, pts) + _timestamp(0b0001, dts), 0xC0
    else:
        fields, flags = _timestamp(0b0010, pts), 0x80
    header = bytes([0x80, flags, len(fields)]) + fields
    return b"\x00\x00\x01\xe0" + struct.pack(">H", len(header) + len(payload)) + header + payload


def _timestamp(prefix: int, value: int) -> bytes:
    return bytes(
        [
            (prefix << 4) | (((value >> 30) & 0x7) << 1) | 1,
            (value >> 22) & 0xFF,
            (((value >> 15) & 0x7F) << 1) | 1,
            (value >> 7) & 0xFF,
            ((value & 0x7F) << 1) | 1,
        ]
    )


def crc32_mpeg(data: bytes) -> int:
    """CRC-32/MPEG-2 (ISO/IEC 13818-1 Annex A): polynomial 0x04C11DB7, not reflected."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def rtp(payload: bytes, seq: int, *, ssrc: int = 0x1234, timestamp: int = 0,
        marker: bool = False) -> bytes:  # fmt: skip
    """A plain RTP packet (RFC 3550 s.5.1), payload type 96 as GB/T 28181 Annex F uses."""
    return (
        struct.pack(
            "!BBHII", 0x80, (0x80 if marker else 0) | 96, seq & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc
        )
        + payload
    )


def rtp_stream(
    data: bytes, *, first_seq: int = 0, ssrc: int = 0x1234, payload_bytes: int = 1400
) -> list[bytes]:
    """``data`` cut into RTP packets of at most ``payload_bytes``, numbered from ``first_seq``."""
    return [
        rtp(data[start : start + payload_bytes], first_seq + index, ssrc=ssrc)
        for index, start in enumerate(range(0, len(data), payload_bytes))
    ]
