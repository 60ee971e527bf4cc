"""MPEG Program Stream files of the simulator's clips: what the GB/T 28181 platform sends.

GB/T 28181-2016 Annex C carries video as an MPEG-2 Program Stream (ISO/IEC 13818-1 s.2.5)
over RTP. H.264 clips are muxed by GStreamer's ``mpegpsmux``, the real muxer, as a platform's
encoder would. GStreamer 1.22's ``mpegpsmux`` takes H.264 only, so H.265 clips go through the
small muxer here: a pack header before every access unit, the system header and the program
stream map (stream type 0x24, ITU-T H.222.0 Table 2-34) before every keyframe, and a PES
packet (split when over 64 KiB) with PTS and DTS per access unit.

Made files are cached beside the clips, named after the clip, written once and atomically.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av
from av.bitstream import BitStreamFilterContext

from surveillance.simulator.clips import ClipError, ClipSpec, ensure_clip

# Bump when the muxing changes, so cached PS files are made again.
PS_VERSION = 1
CACHE_NAME = "surveillance-test-clips"  # the tests' clip cache, in the temporary directory
CACHE_ENV = "SURVEILLANCE_TEST_CLIPS"
GST_TIMEOUT_S = 120.0

VIDEO_STREAM_ID = 0xE0
STREAM_TYPE_H264 = 0x1B  # ITU-T H.222.0 Table 2-34
STREAM_TYPE_HEVC = 0x24
PES_MAX_PAYLOAD = 65_000  # PES_packet_length is 16 bits; keep room for the header
MUX_RATE = 50_000  # in units of 50 bytes/s (20 Mbit/s): an upper bound, not enforced here

# The GB channels' clip names (GbChannelSpec.clip) -> the clip: the tests' small clips.
_SMALL = ClipSpec(
    codec="h264", profile="main", width=640, height=360, fps=25, bitrate_kbps=800, gop_s=1.0,
    seconds=4.0,
)  # fmt: skip
CLIPS: dict[str, ClipSpec] = {
    "h264": _SMALL,
    "h265": replace(_SMALL, codec="h265"),
}


def cache_dir_default() -> Path:
    """Where the tests cache their clips (tests/conftest.py CLIP_CACHE): $SURVEILLANCE_TEST_CLIPS
    or the temporary directory's surveillance-test-clips."""
    return Path(os.environ.get(CACHE_ENV) or Path(tempfile.gettempdir()) / CACHE_NAME)


def ps_file(clip_name: str, cache_dir: Path | None = None) -> Path:
    """The cached PS file of the named clip (``CLIPS``), made first if it is not there yet."""
    spec = CLIPS.get(clip_name)
    if spec is None:
        raise ClipError(f"unknown GB clip {clip_name!r}; known: {', '.join(CLIPS)}")
    return ensure_ps(spec, cache_dir or cache_dir_default())


def ensure_ps(spec: ClipSpec, cache_dir: Path) -> Path:
    """``<cache_dir>/<spec.key()>-ps<PS_VERSION>.ps``, made from the clip if not there yet."""
    clip = ensure_clip(spec, cache_dir)
    path = cache_dir / f"{spec.key()}-ps{PS_VERSION}.ps"
    if path.exists():
        return path
    tmp = cache_dir / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        if spec.codec == "h264":
            _mux_with_gstreamer(clip, tmp)
        else:
            tmp.write_bytes(b"".join(mux_hevc(clip)))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _mux_with_gstreamer(clip: Path, out: Path) -> None:
    gst = shutil.which("gst-launch-1.0")
    if gst is None:
        raise ClipError("gst-launch-1.0 is not installed (scripts/install: gstreamer1.0-tools)")
    # config-interval=-1: SPS and PPS before every IDR, as a camera sends them, so a receiver
    # joining at any keyframe can decode; alignment=au: one access unit per PES packet.
    command = [
        gst, "-q", "filesrc", f"location={clip}", "!", "qtdemux", "!",
        "h264parse", "config-interval=-1", "!",
        "video/x-h264,stream-format=byte-stream,alignment=au", "!",
        "mpegpsmux", "!", "filesink", f"location={out}",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, timeout=GST_TIMEOUT_S, check=False)
    if result.returncode != 0 or not out.exists() or out.stat().st_size == 0:
        message = result.stderr.decode(errors="replace").strip()[-300:]
        raise ClipError(f"mpegpsmux failed ({result.returncode}): {message}")


@dataclass(frozen=True)
class ClipUnit:
    """An access unit of a clip as a camera's encoder sends it: Annex B, 90 kHz timestamps."""

    data: bytes
    pts: int
    dts: int
    keyframe: bool


def mux_hevc(clip: Path) -> Iterator[bytes]:
    """The PS bytes of an MP4 H.265 clip, one access unit (pack) at a time."""
    codec, units = clip_units(clip)
    if codec != "hevc":
        raise ClipError(f"{clip.name} is {codec}, not hevc")
    for unit in units:
        yield pack(unit.data, pts=unit.pts, dts=unit.dts, keyframe=unit.keyframe)


def clip_units(clip: Path) -> tuple[str, list[ClipUnit]]:
    """The codec of an MP4 clip (FFmpeg's name: "h264", "hevc") and its access units."""
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        if codec not in ("h264", "hevc"):
            raise ClipError(f"{clip.name} is {codec}, neither h264 nor hevc")
        time_base = stream.time_base or Fraction(1, 90_000)
        # MP4 keeps parameter sets in the avcC/hvcC box; Annex B needs them in the stream.
        annexb = BitStreamFilterContext(f"{codec}_mp4toannexb", stream)
        packets = [p for p in container.demux(stream) if p.size]
        filtered = [out for p in packets for out in annexb.filter(p)]
        filtered += annexb.filter(None)
        units = []
        for packet in filtered:
            pts = _to_90k(packet.pts, time_base)
            dts = _to_90k(packet.dts, time_base) if packet.dts is not None else pts
            units.append(ClipUnit(bytes(packet), pts, dts, bool(packet.is_keyframe)))
        return codec, units


def _to_90k(value: int | None, time_base: Fraction) -> int:
    if value is None:
        raise ClipError("a packet without a timestamp")
    # A constant offset keeps DTS positive when B-frames make the first DTS negative.
    return (round(value * time_base * 90_000) + 90_000) % (1 << 33)


def pack(
    data: bytes,
    *,
    pts: int,
    dts: int,
    keyframe: bool,
    stream_type: int | None = STREAM_TYPE_HEVC,
    pes_max: int = PES_MAX_PAYLOAD,
    repeat_pts: bool = False,
) -> bytes:
    """One access unit as a pack: pack header, [system header, PSM], PES packet(s).

    The system header and PSM come before a keyframe, unless ``stream_type`` is None (a
    platform that never says which codec it sends). A unit longer than ``pes_max`` is split
    over several PES packets, with its PTS and DTS on the first only, or on each with
    ``repeat_pts`` (as mpegpsmux does)."""
    parts = [pack_header(scr=dts)]
    if keyframe and stream_type is not None:
        parts += [system_header(), program_stream_map(stream_type)]
    for start in range(0, len(data), pes_max):
        timed = start == 0 or repeat_pts
        chunk = data[start : start + pes_max]
        parts.append(pes(chunk, pts=pts if timed else None, dts=dts if timed else None))
    return b"".join(parts)


def pack_header(*, scr: int) -> bytes:
    """ISO/IEC 13818-1 s.2.5.3.3: MPEG-2 pack header, no stuffing."""
    base = scr % (1 << 33)
    bits = (
        (0b01 << 46)
        | (((base >> 30) & 0x7) << 43)
        | (1 << 42)
        | (((base >> 15) & 0x7FFF) << 27)
        | (1 << 26)
        | ((base & 0x7FFF) << 11)
        | (1 << 10)
        | (0 << 1)  # SCR extension
        | 1
    )
    rate = (MUX_RATE << 2) | 0b11
    return b"\x00\x00\x01\xba" + bits.to_bytes(6, "big") + rate.to_bytes(3, "big") + b"\xf8"


def system_header() -> bytes:
    """ISO/IEC 13818-1 s.2.5.3.5: one video stream, no audio."""
    body = (
        ((1 << 23) | (MUX_RATE << 1) | 1).to_bytes(3, "big")  # marker, rate_bound, marker
        + bytes([(0 << 2) | 0b00])  # audio_bound 0, fixed 0, CSPS 0
        + bytes([0b1110_0001])  # audio lock, video lock, marker, video_bound 1
        + b"\x7f"  # packet_rate_restriction 0, reserved
        + bytes([VIDEO_STREAM_ID, 0xE0 | 0x00, 0x80])  # '11', scale 1, 128 KiB buffer bound
    )
    return b"\x00\x00\x01\xbb" + struct.pack(">H", len(body)) + body


def program_stream_map(stream_type: int) -> bytes:
    """ISO/IEC 13818-1 s.2.5.4: one elementary stream, no descriptors, CRC-32 at the end."""
    entries = bytes([stream_type, VIDEO_STREAM_ID]) + b"\x00\x00"
    body = (
        bytes([0x80 | 0x00, 0x01])  # current_next 1, version 0; reserved, marker
        + b"\x00\x00"  # program_stream_info_length
        + struct.pack(">H", len(entries))
        + entries
    )
    head = b"\x00\x00\x01\xbc" + struct.pack(">H", len(body) + 4)
    return head + body + struct.pack(">I", crc32_mpeg(head + body))


def pes(payload: bytes, *, pts: int | None, dts: int | None) -> bytes:
    """ISO/IEC 13818-1 s.2.4.3.6: a video PES packet, with PTS (and DTS when it differs)."""
    fields = b""
    flags = 0
    if pts is not None:
        if dts is not None and dts != pts:
            flags = 0xC0
            fields = _timestamp(0b0011, pts) + _timestamp(0b0001, dts)
        else:
            flags = 0x80
            fields = _timestamp(0b0010, pts)
    # '10', not scrambled, data_alignment_indicator on the packet that starts the unit.
    first_byte = 0x80 | (0x04 if pts is not None else 0)
    header = bytes([first_byte, flags, len(fields)]) + fields
    length = len(header) + len(payload)
    return b"\x00\x00\x01" + bytes([VIDEO_STREAM_ID]) + struct.pack(">H", length) + header + payload


def _timestamp(prefix: int, value: int) -> bytes:
    """The 5-byte PTS/DTS field: 33 bits with marker bits (ISO/IEC 13818-1 s.2.4.3.7)."""
    value %= 1 << 33
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
