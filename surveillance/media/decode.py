"""Decoding on demand: the latest picture of a stream, and JPEG encoding.

Ingest never decodes. Whoever wants pictures follows a subscription through
:class:`PacketDecoder` (or :func:`follow_decoded`, for a thread): one place that knows a
reconnect means new timestamps and perhaps new parameter sets, so a new decoder, started at
the new connection's first keyframe. Its users: the snapshot :class:`LiveDecoder`, mosaic
tiles and the WebRTC transcoding track.

A :class:`LiveDecoder` exists only while someone asks a stream for pictures: it starts from
the cached GOP (so its first picture is the current one, not the next keyframe's), follows
live packets while requests keep coming, and ends ``warm_s`` after the last request.
Requests in between cost a JPEG encode, not a GOP decode.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import av
import cv2
import numpy as np

from surveillance.media.fanout import Subscription, SubscriptionClosed
from surveillance.media.packets import Packet, StreamInfo
from surveillance.media.stream import Stream

log = logging.getLogger(__name__)

JPEG_QUALITY = 85  # 0-100; 85 is visually clean at a third of quality-95's size
DECODER_POLL_S = 0.25  # how often an idle decoder thread checks whether it should end
GAVE_UP_LOG_EVERY_S = 60.0  # a decoder's restarts are logged at most this often


@dataclass(frozen=True)
class DecodedFrame:
    frame: Any  # av.VideoFrame
    seq: int  # seq of the packet that produced it (decode order)
    received_at: float  # monotonic arrival of that packet
    info: StreamInfo


def new_decoder(info: StreamInfo) -> Any:
    ctx = av.CodecContext.create(info.codec, "r")
    if info.extradata:
        ctx.extradata = info.extradata
    # Slice threads, not frame threads: frame threading delays output by one frame per
    # thread, and the picture we want is the newest one.
    ctx.thread_type = "SLICE"
    return ctx


def decode_packets(ctx: Any, packets: list[Packet], flush: bool = False) -> Any | None:
    """Feed packets, return the last frame produced (or None)."""
    last = None
    for packet in packets:
        av_packet = av.Packet(packet.data)
        av_packet.pts = packet.pts
        av_packet.dts = packet.dts
        if packet.keyframe:
            av_packet.is_keyframe = True
        try:
            for frame in ctx.decode(av_packet):
                last = frame
        except av.InvalidDataError:
            continue  # a damaged packet spoils one picture, not the stream
    if flush:
        try:
            for frame in ctx.decode(None):
                last = frame
        except av.InvalidDataError:
            pass
    return last


class PacketDecoder:
    """Decodes the packets of a subscription, across reconnects of its stream.

    A packet of a new connection (another ``info``) needs a new decoder, and nothing of
    that connection before its first keyframe can be decoded: those packets give None.
    """

    def __init__(self, make_decoder: Callable[[StreamInfo], Any] = new_decoder) -> None:
        self._make_decoder = make_decoder
        self._ctx: Any = None
        self.info: StreamInfo | None = None  # the connection being decoded
        self._gave_up_logged_at = float("-inf")

    def decode(self, packet: Packet) -> Any | None:
        """The picture this packet completes (av.VideoFrame), if any."""
        if packet.info is not self.info:
            if not packet.keyframe:
                return None  # wait for a keyframe of the new connection
            self.info = packet.info
            self._ctx = self._make_decoder(packet.info)
        try:
            return decode_packets(self._ctx, [packet])
        except av.FFmpegError as exc:
            # Data the decoder cannot take at all (a GB platform switching codec before its
            # StreamInfo says so: H.264 into an HEVC decoder raises PatchWelcomeError): a
            # new decoder from the next keyframe, not a dead decoding thread.
            now = time.monotonic()
            if now - self._gave_up_logged_at >= GAVE_UP_LOG_EVERY_S:
                self._gave_up_logged_at = now
                log.warning(
                    "the %s decoder gave up (%s: %s); a new one starts at the next keyframe",
                    self.info.codec if self.info else "-", type(exc).__name__, str(exc)[:120],
                )  # fmt: skip
            self.info = None
            self._ctx = None
            return None


def follow_decoded(
    subscription: Subscription,
    should_end: Callable[[], bool],
    poll_s: float,
    make_decoder: Callable[[StreamInfo], Any] = new_decoder,
) -> Iterator[tuple[Packet, Any]]:
    """Each decoded picture of a subscription with the packet that completed it, until
    ``should_end()`` (asked at least every ``poll_s``) or the subscription closes.
    Blocking: for a decoder thread."""
    decoder = PacketDecoder(make_decoder)
    while not should_end():
        try:
            packet = subscription.get(timeout=poll_s)
        except SubscriptionClosed:
            return
        if packet is None:
            continue
        frame = decoder.decode(packet)
        if frame is not None:
            yield packet, frame


def decode_keyframe(keyframe: Packet) -> Any | None:
    """The picture of one keyframe alone: the cheap snapshot mode."""
    return decode_packets(new_decoder(keyframe.info), [keyframe], flush=True)


def encode_jpeg(frame: Any, width: int | None = None) -> tuple[bytes, int, int]:
    """JPEG bytes of a frame, scaled to ``width`` (aspect kept) if given and smaller."""
    out_w, out_h = frame.width, frame.height
    if width and width < frame.width:
        out_w = max(2, width - width % 2)
        out_h = max(2, round(frame.height * out_w / frame.width / 2) * 2)
    bgr: np.ndarray = frame.to_ndarray(format="bgr24", width=out_w, height=out_h)
    ok, buffer = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buffer.tobytes(), out_w, out_h


class LiveDecoder:
    """Decodes one stream in its own thread while pictures are being asked for."""

    def __init__(self, stream: Stream, warm_s: float) -> None:
        self.stream = stream
        self.warm_s = warm_s
        self._cond = threading.Condition()
        self._latest: DecodedFrame | None = None
        self._last_request = time.monotonic()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def wait_for(self, seq: int, timeout: float) -> DecodedFrame | None:
        """The newest decoded picture once packet ``seq`` (or later) has been decoded."""
        with self._cond:
            self._last_request = time.monotonic()
            self._ensure_thread_locked()
            self._cond.wait_for(
                lambda: self._latest is not None and self._latest.seq >= seq, timeout
            )
            return self._latest

    def wait_if_warm(self, seq: int, timeout: float) -> DecodedFrame | None:
        """As :meth:`wait_for`, but only from a decoder already running with a picture;
        None at once from a cold one, which it leaves cold (no catch-up is started)."""
        with self._cond:
            if self._thread is None or self._latest is None:
                return None
            self._last_request = time.monotonic()
            self._cond.wait_for(
                lambda: self._latest is not None and self._latest.seq >= seq, timeout
            )
            return self._latest

    def stop(self) -> None:
        with self._cond:
            self._stopping = True

    def _ensure_thread_locked(self) -> None:
        # A thread that decided to end clears _thread under the lock first, so a request
        # arriving while it winds down starts a fresh one instead of waiting on it.
        if self._thread is None:
            self._stopping = False
            self._latest = None
            self._thread = threading.Thread(
                target=self._run, name=f"decode:{self.stream.key}", daemon=True
            )
            self._thread.start()

    def _should_end(self) -> bool:
        with self._cond:
            idle = time.monotonic() - self._last_request
            if self._stopping or idle > self.warm_s:
                self._thread = None
                return True
            return False

    def _run(self) -> None:
        try:
            self._decode_until_idle()
        except Exception:  # said in the project's log; the next request starts a new thread
            log.exception("stream %s: the live decoder failed", self.stream.key)
        finally:
            with self._cond:
                if self._thread is threading.current_thread():
                    self._thread = None

    def _decode_until_idle(self) -> None:
        with self.stream.subscribe(from_cached_gop=True) as subscription:
            for packet, frame in follow_decoded(subscription, self._should_end, DECODER_POLL_S):
                decoded = DecodedFrame(frame, packet.seq, packet.received_at, packet.info)
                with self._cond:
                    self._latest = decoded
                    self._cond.notify_all()
