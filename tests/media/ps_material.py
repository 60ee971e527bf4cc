"""Program streams and RTP for the GB/T 28181 media tests, made from the simulator's clips.

The PS bytes are the simulator's (simulator/ps_mux.py: GStreamer's ``mpegpsmux`` for H.264,
its own muxer from ISO/IEC 13818-1 s.2.5 otherwise); the tests check FFmpeg reads what it
writes, so it is held to the standard by an implementation other than the demuxer under test.
Here only what the simulator does not send: the variants a demuxer must still read (pack
headers with stuffing, no PSM, a codec change, timestamps near the 33-bit wrap) and plain RTP.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

import av

from surveillance.simulator.ps_mux import PES_MAX_PAYLOAD, STREAM_TYPE_HEVC, ClipUnit, pack

PACK_HEADER_BYTES = 14  # ISO/IEC 13818-1 s.2.5.3.3, without stuffing
STUFFING = b"\xff\xff"  # after every pack header written here, which a reader must skip


def ffmpeg_units(path: Path) -> tuple[str, list[ClipUnit]]:
    """The codec and packets FFmpeg's MPEG-PS demuxer reads from ``path``."""
    with av.open(str(path), format="mpeg") as container:
        stream = container.streams.video[0]
        units = []
        for packet in container.demux(stream):
            if packet.size:
                assert packet.pts is not None and packet.dts is not None
                units.append(ClipUnit(bytes(packet), packet.pts, packet.dts, packet.is_keyframe))
        return stream.codec_context.name, units


def write_ps(
    units: Iterable[ClipUnit],
    stream_type: int | None = STREAM_TYPE_HEVC,
    *,
    repeat_pts: bool = False,
    pts_offset: int = 0,
    pes_max: int = PES_MAX_PAYLOAD,
) -> bytes:
    """A program stream of ``units``, a pack each (simulator/ps_mux.py ``pack``: no PSM when
    ``stream_type`` is None, PES of at most ``pes_max`` bytes, the PTS on each with
    ``repeat_pts``), each pack header followed by two bytes of stuffing. ``pts_offset`` is
    added to every timestamp, mod 2**33."""
    return b"".join(
        _stuffed(
            pack(
                unit.data,
                pts=unit.pts + pts_offset,
                dts=unit.dts + pts_offset,
                keyframe=unit.keyframe,
                stream_type=stream_type,
                pes_max=pes_max,
                repeat_pts=repeat_pts,
            )
        )
        for unit in units
    )


def _stuffed(packed: bytes) -> bytes:
    """``packed`` with two stuffing bytes after its pack header (pack_stuffing_length: the
    low three bits of the header's last byte)."""
    header = packed[:PACK_HEADER_BYTES]
    assert header.startswith(b"\x00\x00\x01\xba") and header[-1] & 0x07 == 0
    stuffed = header[:-1] + bytes([header[-1] | len(STUFFING)]) + STUFFING
    return stuffed + packed[PACK_HEADER_BYTES:]


def rtp(payload: bytes, seq: int, *, ssrc: int = 0x1234, timestamp: int = 0,
        marker: bool = False) -> bytes:  # fmt: skip
    """A plain RTP packet (RFC 3550 s.5.1), payload type 96 as GB/T 28181 Annex F uses."""
    return (
        struct.pack(
            "!BBHII", 0x80, (0x80 if marker else 0) | 96, seq & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc
        )
        + payload
    )
