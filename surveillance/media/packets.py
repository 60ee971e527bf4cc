"""The unit that flows from a camera to every consumer: one compressed packet."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What a decoder or muxer needs to know about one connection's video stream.

    A new object is made at every (re)connect: timestamps restart and parameter sets may
    change, so consumers compare ``info`` identity to know they must start over.
    """

    codec: str  # FFmpeg codec name: "h264" or "hevc"
    width: int
    height: int
    time_base: Fraction
    extradata: bytes | None  # parameter sets from the SDP (avcC/hvcC or Annex B)
    profile: str | None
    average_fps: float | None
    connected_at: float  # time.time() of the connection


@dataclass(frozen=True, slots=True)
class Packet:
    """One compressed access unit as received, never decoded by ingest.

    ``seq`` increases by one per packet over the stream's life (across reconnects), so
    consumers can tell what they have seen and what they missed.
    """

    seq: int
    data: bytes
    pts: int | None
    dts: int | None
    keyframe: bool
    received_at: float  # time.monotonic()
    info: StreamInfo

    @property
    def size(self) -> int:
        return len(self.data)
