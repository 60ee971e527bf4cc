"""Remuxing packets to MP4: H.264 (with and without B-frames) and H.265, Annex B packets
as RTSP delivers them, no re-encode (the same NAL units come back out)."""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np
import pytest

from surveillance.media.clip import ClipError, remux_mp4
from surveillance.media.packets import Packet, StreamInfo

TIME_BASE = Fraction(1, 90_000)
FPS = 25


def annexb_packets(codec: str, frames: int, bframes: int) -> list[Packet]:
    """Encode a moving picture; packets carry Annex B data with timestamps, like RTSP's."""
    encoder = av.CodecContext.create("libx264" if codec == "h264" else "libx265", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 320, 240, "yuv420p"
    encoder.time_base, encoder.framerate = TIME_BASE, Fraction(FPS)
    encoder.gop_size = FPS
    encoder.options = (
        {"bf": str(bframes)}
        if codec == "h264"
        else {"x265-params": f"log-level=none:bframes={bframes}:keyint={FPS}"}
    )
    info = StreamInfo(codec if codec == "h264" else "hevc", 320, 240, TIME_BASE, None, None,
                      float(FPS), 0.0)  # fmt: skip
    out: list[Packet] = []
    for i in range(frames + 1):
        if i == frames:
            encoded = encoder.encode(None)
        else:
            picture = np.zeros((240, 320, 3), np.uint8)
            picture[:, (i * 7) % 320 :] = 200
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(format="yuv420p")
            frame.pts = i * (90_000 // FPS)
            frame.time_base = TIME_BASE
            encoded = encoder.encode(frame)
        for p in encoded:
            out.append(Packet(len(out), bytes(p), p.pts, p.dts, p.is_keyframe, 0.0, info))
    return out


def nal_units_annexb(data: bytes) -> list[bytes]:
    parts = data.replace(b"\x00\x00\x00\x01", b"\x00\x00\x01").split(b"\x00\x00\x01")
    return [part.rstrip(b"\x00") for part in parts if part]


def nal_units_lengths(data: bytes) -> list[bytes]:
    units, at = [], 0
    while at < len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        units.append(data[at + 4 : at + 4 + size].rstrip(b"\x00"))
        at += 4 + size
    return units


@pytest.mark.parametrize(("codec", "bframes"), [("h264", 0), ("h264", 2), ("hevc", 0)])
def test_remux_keeps_every_packet_unchanged(codec: str, bframes: int) -> None:
    packets = annexb_packets(codec, 50, bframes)
    data, facts = remux_mp4(packets)
    assert data[4:8] == b"ftyp"
    assert data.find(b"moov") < data.find(b"mdat")  # faststart: players start at once
    assert (facts.codec, facts.width, facts.height, facts.frames) == (codec, 320, 240, 50)
    assert facts.duration_s == pytest.approx(2.0, abs=0.05)
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == codec
        muxed = [p for p in container.demux(stream) if p.size]
    assert len(muxed) == len(packets)
    assert muxed[0].is_keyframe
    for original, copied in zip(packets, muxed, strict=True):
        assert nal_units_lengths(bytes(copied)) == nal_units_annexb(original.data)
        assert copied.is_keyframe == original.keyframe


def test_clip_must_start_with_a_keyframe() -> None:
    packets = annexb_packets("h264", 10, 0)
    with pytest.raises(ClipError):
        remux_mp4(packets[1:])
    with pytest.raises(ClipError):
        remux_mp4([])
