"""Clips from the packet ring: collect a time window of packets, remux them to MP4.

No decoding and no re-encoding: the packets the camera sent (Annex B, H.264 or H.265)
are written into an MP4 as they are; FFmpeg's MP4 muxer only rewrites start codes as
length prefixes and turns the parameter sets into the ``avcC``/``hvcC`` box. A clip starts
at the keyframe at or before the requested start, so it decodes from its first frame.

PyAV's ``add_stream`` would open an encoder, and an H.264 encoder's own parameter sets
would replace the camera's; so the output stream is copied from a template: a raw
H.264/H.265 demuxer reading the stream's parameter sets and first keyframe from memory.
"""

from __future__ import annotations

import io
import itertools
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from surveillance.media.fanout import SubscriptionClosed
from surveillance.media.packets import Packet, StreamInfo
from surveillance.media.stream import Stream

RAW_FORMATS = {"h264": "h264", "hevc": "hevc"}  # FFmpeg demuxer of each codec's Annex B
CLIP_QUEUE_PACKETS = 20_000  # a clip's live part may queue this many packets unread
POLL_S = 0.25  # how often a clip waiting for live packets checks its deadline
DEFAULT_FPS = 25.0  # to place packets that arrive without timestamps (rare)


class ClipError(Exception):
    """Nothing usable in the requested window."""


@dataclass(frozen=True)
class ClipWindow:
    packets: list[Packet]  # from a keyframe, one connection, in decode order
    truncated_by_s: float  # seconds missing at the end (stream ended or dropped)
    late_start_s: float  # seconds missing at the start (the ring did not reach back)


@dataclass(frozen=True)
class ClipFacts:
    codec: str
    width: int
    height: int
    frames: int
    duration_s: float
    first_pts_s: float | None  # the first frame's time on the camera's media clock


def collect_window(stream: Stream, start: float, end: float, grace_s: float) -> ClipWindow:
    """Packets from the keyframe at or before ``start`` to ``end`` (monotonic times).

    If ``end`` is in the future, follows the live stream until a packet arrives at or after
    ``end``, or ``end + grace_s`` passes, or the stream ends. Blocking: call in a thread.
    """
    if end <= time.monotonic():
        packets = stream.ring.since(start)
    else:
        # Subscribe before reading the ring, starting at the cached GOP (a subscription
        # starts at a keyframe): every packet is then in one or both, and the overlap is
        # removed by seq.
        with stream.subscribe(from_cached_gop=True, max_packets=CLIP_QUEUE_PACKETS) as live:
            packets = stream.ring.since(start)
            _follow(live, packets, end, end + grace_s)
    return _trim(packets, start, end)


def _follow(live: Any, packets: list[Packet], end: float, deadline: float) -> None:
    last_seq = packets[-1].seq if packets else None
    while not packets or packets[-1].received_at < end:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        try:
            packet = live.get(timeout=min(remaining, POLL_S))
        except SubscriptionClosed:
            return
        if packet is None or (last_seq is not None and packet.seq <= last_seq):
            continue
        if last_seq is not None and packet.seq != last_seq + 1:
            return  # this reader fell behind and lost packets: the clip ends before the gap
        if not packets and not packet.keyframe:
            continue
        packets.append(packet)
        last_seq = packet.seq


def _trim(packets: list[Packet], start: float, end: float) -> ClipWindow:
    while packets and not packets[0].keyframe:
        packets = packets[1:]
    if not packets or packets[0].received_at > end:
        raise ClipError("no packets in the requested window")
    info = packets[0].info
    kept: list[Packet] = []
    for packet in packets:
        if packet.info is not info or packet.received_at > end:
            break  # a reconnect restarts timestamps: the clip ends with the connection
        kept.append(packet)
    late = max(0.0, kept[0].received_at - start)
    short = max(0.0, end - kept[-1].received_at)
    return ClipWindow(kept, short, late)


def remux_mp4(packets: Sequence[Packet]) -> tuple[bytes, ClipFacts]:
    """An MP4 of ``packets`` (one connection, first one a keyframe), not re-encoded."""
    if not packets or not packets[0].keyframe:
        raise ClipError("a clip must start with a keyframe")
    info = packets[0].info
    if info.codec not in RAW_FORMATS:
        raise ClipError(f"cannot remux codec {info.codec!r}")
    timestamps = _timestamps(packets, info)
    with tempfile.TemporaryDirectory(prefix="clip-") as workdir:
        # A file, not memory: +faststart (the index first, so players start at once)
        # re-reads the file by name when the muxer finishes.
        path = Path(workdir) / "clip.mp4"
        template = _template(packets[0], info)
        try:
            source = template.streams.video[0]
            width, height = source.codec_context.width, source.codec_context.height
            output = av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"})
            try:
                stream = output.add_stream_from_template(source, opaque=True)
                stream.time_base = info.time_base
                for packet, (pts, dts) in zip(packets, timestamps, strict=True):
                    av_packet = av.Packet(packet.data)
                    av_packet.pts, av_packet.dts = pts, dts
                    av_packet.time_base = info.time_base
                    av_packet.is_keyframe = packet.keyframe
                    av_packet.stream = stream
                    output.mux(av_packet)
            finally:
                output.close()
        finally:
            template.close()
        data = path.read_bytes()
    pts_values = sorted(p for p, _ in timestamps)
    frame_ticks = _frame_ticks(pts_values, info)
    duration = float((pts_values[-1] - pts_values[0] + frame_ticks) * info.time_base)
    first_pts = packets[0].pts
    facts = ClipFacts(
        codec=info.codec,
        width=width or info.width,
        height=height or info.height,
        frames=len(packets),
        duration_s=duration,
        first_pts_s=None if first_pts is None else float(first_pts * info.time_base),
    )
    return data, facts


def _template(keyframe: Packet, info: StreamInfo) -> Any:
    """A demuxed stream describing the codec, from parameter sets and one keyframe."""
    head = info.extradata if info.extradata and not info.extradata.startswith(b"\x01") else b""
    return av.open(
        io.BytesIO(head + keyframe.data),
        format=RAW_FORMATS[info.codec],
        # Parameter sets are at the front: no need to read or decode further.
        options={"probesize": "32", "analyzeduration": "0"},
    )


def _frame_ticks(sorted_pts: list[int], info: StreamInfo) -> int:
    deltas = [b - a for a, b in itertools.pairwise(sorted_pts) if b > a]
    if deltas:
        return sorted(deltas)[len(deltas) // 2]
    fps = info.average_fps or DEFAULT_FPS
    return max(1, round(1 / (fps * info.time_base)))


def _timestamps(packets: Sequence[Packet], info: StreamInfo) -> list[tuple[int, int]]:
    """(pts, dts) per packet, starting near zero, dts strictly increasing.

    RTSP gives every packet a pts; dts may be missing. Missing values are filled from the
    packet before at the stream's frame rate.
    """
    fps = info.average_fps or DEFAULT_FPS
    step = max(1, round(1 / (Fraction(fps).limit_denominator(1001) * info.time_base)))
    raw: list[tuple[int, int]] = []
    previous_dts: int | None = None
    for packet in packets:
        dts = packet.dts if packet.dts is not None else packet.pts
        if dts is None:
            dts = 0 if previous_dts is None else previous_dts + step
        if previous_dts is not None and dts <= previous_dts:
            dts = previous_dts + 1  # the muxer refuses non-increasing dts
        pts = packet.pts if packet.pts is not None and packet.pts >= dts else dts
        raw.append((pts, dts))
        previous_dts = dts
    base = raw[0][1]
    return [(pts - base, dts - base) for pts, dts in raw]
