"""Run a video file through one camera's diagnosis offline, on the file's own clock.

The file's packets go in as the live pump feeds them (size, keyframe flag, timestamp, and an
arrival equal to the timestamp), looped as the simulator loops a clip; at each sample the
newest keyframe is decoded alone by media/decode.py, as live. Minutes of footage take
seconds: only one keyframe per interval is decoded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av

from surveillance.media.decode import decode_keyframe
from surveillance.media.packets import Packet, StreamInfo
from surveillance.services.camera_quality import (
    CameraQuality,
    Change,
    DiagnosisSettings,
    picture_of,
)


@dataclass
class FeedResult:
    changes: list[tuple[float, Change]] = field(default_factory=list)  # (media time, change)
    samples: int = 0
    pictures: int = 0
    media_s: float = 0.0


@dataclass(frozen=True)
class _Unit:
    data: bytes
    keyframe: bool
    time_s: float


def _read(path: Path) -> tuple[StreamInfo, list[_Unit], float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        info = StreamInfo(
            codec=ctx.name,
            width=ctx.width,
            height=ctx.height,
            time_base=stream.time_base or Fraction(1, 90000),
            extradata=ctx.extradata,
            profile=ctx.profile,
            average_fps=float(stream.average_rate) if stream.average_rate else None,
            connected_at=time.time(),
        )
        units = []
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            stamp = packet.dts if packet.dts is not None else packet.pts
            assert stamp is not None and packet.time_base is not None
            units.append(_Unit(bytes(packet), packet.is_keyframe, float(stamp * packet.time_base)))
    step = units[-1].time_s - units[-2].time_s if len(units) > 1 else 0.04
    duration = units[-1].time_s - units[0].time_s + step
    return info, units, duration


def feed(
    path: Path,
    settings: DiagnosisSettings,
    media_s: float,
    *,
    reference_at_s: float | None = None,
) -> FeedResult:
    """Feed ``path`` looped for ``media_s`` seconds; with ``reference_at_s``, the keyframe
    judged at that time becomes the camera's reference (an operator's click)."""
    info, units, duration = _read(path)
    quality = CameraQuality("offline", settings)
    result = FeedResult()
    reference = None
    newest: Packet | None = None
    judged_seq = -1
    seq = 0
    loop = 0
    first = True
    while True:
        for unit in units:
            at = loop * duration + unit.time_s - units[0].time_s
            if at >= media_s:
                result.media_s = at
                return result
            # Arrival: the media time itself; a real camera's jitter changes nothing judged.
            quality.packet(len(unit.data), unit.keyframe, at, at, new_connection=first)
            first = False
            packet = Packet(seq, unit.data, None, None, unit.keyframe, at, info)
            seq += 1
            if unit.keyframe:
                newest = packet
            if not quality.due(at):
                continue
            window, connection = quality.take_window(at)
            picture = None
            if newest is not None and newest.seq != judged_seq and not quality.settling(at):
                judged_seq = newest.seq
                frame = decode_keyframe(newest)
                picture = None if frame is None else picture_of(frame)
                result.pictures += picture is not None
            if reference_at_s is not None and at >= reference_at_s and reference is None:
                reference = picture
            result.samples += 1
            for change in quality.judge(at, window, connection, picture, reference):
                result.changes.append((at, change))
        loop += 1
