"""Fragmented MP4 for Media Source Extensions: the camera's packets re-wrapped, not re-encoded.

The browser path for sources WebRTC cannot carry (B-frames, H.265 where the browser
decodes it). One fragment per frame keeps latency at one frame interval instead of one GOP.
The muxer's stream is copied from a template that FFmpeg builds by parsing the parameter
sets, which gives the MP4 its avcC/hvcC box without any hand-written box code.

:class:`MseSegmenter` follows a subscription across reconnects (a new connection needs a
new init segment) and is blocking work: the live service runs it in a thread, a burst of
queued packets per hand-off.
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av

from surveillance.media.bitstream import codec_string, parameter_sets_annexb, with_parameter_sets
from surveillance.media.mp4_boxes import MemorySink
from surveillance.media.packets import Packet, StreamInfo

MSE_TIME_BASE = Fraction(1, 90_000)
# empty_moov: the init segment comes first, alone; frag_every_frame: a fragment per frame;
# default_base_moof: what MSE expects for fragment offsets.
MOVFLAGS = "empty_moov+default_base_moof+frag_every_frame+omit_tfhd_offset"
FALLBACK_CODEC_STRING = "avc1.640028"  # High 4.0: for parameter sets we cannot read
# Consecutive frames further apart than this are a jump of the source's clock or packets
# skipped (a viewer that fell behind), not a slow camera: the timeline is carried on.
MAX_FRAME_GAP_S = 2.0
DEFAULT_FPS = 25.0


def _template_stream(info: StreamInfo, first_keyframe: bytes) -> tuple[Any, Any]:
    """An input stream whose codec parameters FFmpeg derived from our parameter sets."""
    parameter_sets = parameter_sets_annexb(info.codec, info.extradata)
    data = with_parameter_sets(info.codec, first_keyframe, parameter_sets)
    container = av.open(io.BytesIO(data), format="h264" if info.codec == "h264" else "hevc")
    return container, container.streams.video[0]


def _split_boxes(buffer: bytearray) -> Iterator[tuple[bytes, bytes]]:
    """Complete top-level MP4 boxes at the front of buffer, removed from it as they go."""
    while len(buffer) >= 8:
        size = int.from_bytes(buffer[0:4], "big")
        if size < 8 or len(buffer) < size:
            return
        box_type = bytes(buffer[4:8])
        box = bytes(buffer[:size])
        del buffer[:size]
        yield box_type, box


class FragmentedMp4Muxer:
    """Feed packets of one connection (starting at a keyframe); get the init segment and
    one media segment (moof+mdat) per frame."""

    def __init__(self, info: StreamInfo, first_keyframe: Packet) -> None:
        self.info = info
        self._sink = MemorySink()
        self._template_container, template = _template_stream(info, first_keyframe.data)
        self._output = av.open(
            self._sink,
            "w",
            format="mp4",
            options={"movflags": MOVFLAGS},
            container_options={"flush_packets": "1"},
            buffer_size=4096,
        )
        self._stream = self._output.add_stream_from_template(template)
        self._stream.time_base = MSE_TIME_BASE
        self._parameter_sets = parameter_sets_annexb(info.codec, info.extradata)
        self._origin: int | None = None
        self._last_dts: int | None = None
        ticks_per_s = 1 / info.time_base
        # A frame's duration until the stream shows its own (the source's rate, else 25 fps).
        self._frame_step = max(1, round(ticks_per_s / (info.average_fps or DEFAULT_FPS)))
        self._max_step = round(ticks_per_s * MAX_FRAME_GAP_S)
        self._pending_moof: bytes | None = None
        self.init_segment = b""
        self._output.start_encoding()
        self._collect()  # the init segment is written at start

    def codec_string(self) -> str | None:
        return codec_string(self.info.codec, self._parameter_sets)

    @property
    def mime(self) -> str:
        """What the page passes to ``MediaSource.addSourceBuffer``."""
        return f'video/mp4; codecs="{self.codec_string() or FALLBACK_CODEC_STRING}"'

    def add(self, packet: Packet) -> list[bytes]:
        """Media segments completed by this packet (usually exactly one)."""
        data = packet.data
        if packet.keyframe:
            data = with_parameter_sets(self.info.codec, data, self._parameter_sets)
        pts = packet.pts if packet.pts is not None else packet.dts
        dts = packet.dts if packet.dts is not None else pts
        if pts is None or dts is None:
            return []
        if self._origin is None:
            self._origin = dts
        dts -= self._origin
        pts -= self._origin
        if self._last_dts is not None:
            step = dts - self._last_dts
            if step <= 0 or step > self._max_step:
                # The camera's clock jumped (reset, wrap) or packets were skipped: carry on
                # one frame after the last instead. A jump back would otherwise drop every
                # packet until the clock passed its old value (the muxer refuses them), and
                # a jump forward leaves a gap the browser stops playing at.
                self._origin += step - self._frame_step
                dts -= step - self._frame_step
                pts -= step - self._frame_step
            else:
                self._frame_step = step
        self._last_dts = dts
        av_packet = av.Packet(data)
        av_packet.time_base = packet.info.time_base
        av_packet.dts = dts
        av_packet.pts = max(pts, dts)
        av_packet.is_keyframe = packet.keyframe
        av_packet.stream = self._stream
        self._output.mux(av_packet)
        return self._collect()

    def _collect(self) -> list[bytes]:
        segments: list[bytes] = []
        for box_type, box in _split_boxes(self._sink.data):
            if box_type in (b"ftyp", b"moov"):
                self.init_segment += box
            elif box_type == b"moof":
                self._pending_moof = box
            elif box_type == b"mdat" and self._pending_moof is not None:
                segments.append(self._pending_moof + box)
                self._pending_moof = None
        return segments

    def close(self) -> None:
        # Closing only flushes the last fragment, which nobody will play: errors don't matter.
        with contextlib.suppress(av.FFmpegError, ValueError):
            self._output.close()
        self._template_container.close()


@dataclass(frozen=True)
class InitSegment:
    """Sent before the media segments of each connection: the page (re)creates its buffer."""

    mime: str
    data: bytes


class MseSegmenter:
    """A subscription's packets as MSE segments, across reconnects of the stream.

    Blocking (FFmpeg parses parameter sets and muxes): call from one thread at a time; the
    lock makes a ``close`` from another thread wait for a ``segments`` still running.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._muxer: FragmentedMp4Muxer | None = None
        self._closed = False

    def segments(self, packets: Sequence[Packet]) -> list[InitSegment | bytes]:
        """An init segment at each new connection's first keyframe, then one media segment
        per frame; packets of a connection before its first keyframe are skipped."""
        out: list[InitSegment | bytes] = []
        with self._lock:
            for packet in packets:
                if self._closed:
                    break
                muxer = self._muxer
                if muxer is None or packet.info is not muxer.info:
                    if not packet.keyframe:
                        continue
                    if muxer is not None:
                        muxer.close()
                    muxer = self._muxer = FragmentedMp4Muxer(packet.info, packet)
                    out.append(InitSegment(muxer.mime, muxer.init_segment))
                out.extend(muxer.add(packet))
        return out

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._muxer is not None:
                self._muxer.close()
                self._muxer = None
