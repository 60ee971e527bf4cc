"""H.264 encoding of composed pictures with libx264, shaped for WebRTC pass-through.

No B-frames (WebRTC cannot reorder, docs/architecture.md), parameter sets in front of every keyframe
(x264 repeats them when the codec has no global header), a keyframe every
``KEYFRAME_INTERVAL_S`` so a new viewer's cached GOP stays short, and zero-latency tuning
so a picture leaves the encoder as soon as it goes in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av

from surveillance.media.canvas import U8Array
from surveillance.media.packets import StreamInfo

X264_PRESET = "ultrafast"  # the mosaic's budget is half a core for 16 tiles at 1080p25
KEYFRAME_INTERVAL_S = 2.0  # the longest a new viewer's cached GOP can be
BITS_PER_PIXEL_SECOND = 0.08  # ~4 Mbit/s at 1080p25: tiles of shrunk pictures, no fine detail
MIN_BITRATE_BPS = 1_000_000
# x264's own threads cost ~10% more CPU than one thread here. One thread encodes a 1080p
# picture in ~9 ms, well inside a 40 ms frame; a 2160p picture needs them.
SINGLE_THREAD_MAX_PIXELS = 1920 * 1080


@dataclass(frozen=True, slots=True)
class EncodedPacket:
    data: bytes
    pts: int  # in the stream's time base, 1/fps
    keyframe: bool


class H264Encoder:
    def __init__(self, width: int, height: int, fps: int) -> None:
        bitrate = max(MIN_BITRATE_BPS, int(width * height * fps * BITS_PER_PIXEL_SECOND))
        ctx: Any = av.CodecContext.create("libx264", "w")
        ctx.width = width
        ctx.height = height
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = Fraction(1, fps)
        ctx.framerate = Fraction(fps, 1)
        ctx.gop_size = max(1, round(fps * KEYFRAME_INTERVAL_S))
        ctx.max_b_frames = 0
        ctx.bit_rate = bitrate
        ctx.options = {
            "preset": X264_PRESET,
            "tune": "zerolatency",
            # A capped rate: WebRTC over a real network suffers from bursts more than
            # from a slightly softer picture.
            "maxrate": str(bitrate),
            "bufsize": str(bitrate),
            "sc_threshold": "0",  # keyframes on the clock, not on scene cuts
            "threads": "1" if width * height <= SINGLE_THREAD_MAX_PIXELS else "0",
        }
        self._ctx = ctx
        self.info = StreamInfo(
            codec="h264",
            width=width,
            height=height,
            time_base=Fraction(1, fps),
            extradata=None,  # parameter sets travel in the stream, before each keyframe
            profile=None,
            average_fps=float(fps),
            connected_at=time.time(),
        )

    def encode(self, i420: U8Array, pts: int) -> list[EncodedPacket]:
        frame = av.VideoFrame.from_ndarray(i420, format="yuv420p")
        frame.pts = pts
        return [
            EncodedPacket(bytes(p), int(p.pts if p.pts is not None else pts), bool(p.is_keyframe))
            for p in self._ctx.encode(frame)
        ]

    def close(self) -> None:
        # Zero-latency tuning holds nothing back, so there is nothing worth flushing.
        self._ctx = None
