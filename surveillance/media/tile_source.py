"""One mosaic tile's camera: every packet decoded in its own thread, scaled only when shown.

A P-frame needs the pictures before it, so the decoder must see every packet of the
(sub-)stream; but the compositor wants at most one picture per mosaic frame, at the tile's
size. So the thread only decodes and keeps the newest picture, and the compositor scales
it (the costly part after decoding) straight into its canvas with :func:`scale_into`,
once per new picture actually shown.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from surveillance.media.canvas import U8Array
from surveillance.media.decode import follow_decoded, new_decoder
from surveillance.media.fanout import Subscription
from surveillance.media.packets import StreamInfo
from surveillance.media.stream import Stream

log = logging.getLogger(__name__)

TILE_POLL_S = 0.25  # how often an idle decoder thread checks whether it should end
TILE_QUEUE_PACKETS = 100  # ~4 s at 25 fps; a tile decoder further behind skips to a keyframe
# Deblocking is a third to a half of H.264 decoding time here. When the picture is shrunk
# into a tile, its effect is mostly scaled away, so tiles at most this share of the
# source's width decode without it (FFmpeg's skip_loop_filter); larger tiles keep it.
SKIP_DEBLOCK_AT_SCALE = 0.8
SCALE_INTERPOLATION = "FAST_BILINEAR"  # swscale, for pictures not in plain I420


ASPECT_TOLERANCE = 0.03  # stretch rather than leave slivers of a few pixels around a picture


@dataclass(frozen=True, slots=True)
class TileFrame:
    frame: Any  # the newest decoded av.VideoFrame
    serial: int  # grows by one with every new picture
    received_at: float  # monotonic arrival of the packet that completed it


def fit(source_w: int, source_h: int, box_w: int, box_h: int) -> tuple[int, int]:
    """The even-sided size of a ``source_w`` x ``source_h`` picture shown inside the box."""
    scale = min(box_w / source_w, box_h / source_h)
    width = min(box_w, max(2, round(source_w * scale / 2) * 2))
    height = min(box_h, max(2, round(source_h * scale / 2) * 2))
    if abs(width / box_w - 1) < ASPECT_TOLERANCE and abs(height / box_h - 1) < ASPECT_TOLERANCE:
        return box_w, box_h
    return width, height


def _plane(plane: Any) -> U8Array:
    """A decoded picture's plane as an array view (rows padded to ``line_size``, cut off)."""
    rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, : plane.width]


def scale_into(frame: Any, y: U8Array, u: U8Array, v: U8Array) -> None:
    """Scale a decoded picture into the three I420 plane views ``y``, ``u``, ``v`` (chroma
    half the size of luma), in place.

    Video-range 4:2:0, what cameras send, is resized plane by plane with OpenCV straight
    from the decoder's buffers into the canvas: no copy of the picture before or after,
    and about twice as fast here as swscale through PyAV. Anything else goes through
    swscale first, which also converts range and chroma layout.
    """
    height, width = y.shape
    if frame.format.name != "yuv420p" or frame.width % 2 or frame.height % 2:
        frame = frame.reformat(
            width=width, height=height, format="yuv420p", interpolation=SCALE_INTERPOLATION
        )
    for plane, target in zip(frame.planes, (y, u, v), strict=True):
        source = _plane(plane)
        if source.shape == target.shape:
            target[...] = source
            continue
        size = (target.shape[1], target.shape[0])
        out = cv2.resize(source, size, dst=target, interpolation=cv2.INTER_LINEAR)
        if out is not target:  # OpenCV wrote elsewhere (it did not here): copy it in
            target[...] = out


class TileSource:
    """Decodes one stream for one tile of ``width`` x ``height`` pixels."""

    def __init__(self, stream: Stream, width: int, height: int) -> None:
        self.stream = stream
        self.width = width
        self.height = height
        self._lock = threading.Lock()
        self._frame: Any = None  # newest decoded av.VideoFrame
        self._frame_received_at = 0.0
        self._frame_serial = 0
        self._stop = threading.Event()
        self._subscription: Subscription | None = None
        self._thread: threading.Thread | None = None
        self.decoded = 0  # pictures decoded, for tests and benchmarks

    def start(self) -> None:
        # Subscribe here, not in the thread: the stream counts this consumer from now on,
        # so an on-demand camera cannot be parked in between.
        self._subscription = self.stream.subscribe(
            from_cached_gop=True, max_packets=TILE_QUEUE_PACKETS
        )
        self._thread = threading.Thread(
            target=self._run, args=(self._subscription,), name=f"tile:{self.stream.key}"
        )
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._subscription is not None:
            self._subscription.close()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def newest(self) -> TileFrame | None:
        """The newest decoded picture, None before the first."""
        with self._lock:
            if self._frame is None:
                return None
            return TileFrame(self._frame, self._frame_serial, self._frame_received_at)

    def _new_decoder(self, info: StreamInfo) -> Any:
        ctx = new_decoder(info)
        # One thread per tile already; codec threads on top only add switching.
        ctx.thread_count = 1
        if self.width <= info.width * SKIP_DEBLOCK_AT_SCALE:
            ctx.options = {"skip_loop_filter": "all"}
        return ctx

    def _run(self, subscription: Subscription) -> None:
        try:
            while True:
                for packet, frame in follow_decoded(
                    subscription, self._stop.is_set, TILE_POLL_S, self._new_decoder
                ):
                    self.decoded += 1
                    with self._lock:
                        self._frame = frame
                        self._frame_received_at = packet.received_at
                        self._frame_serial += 1
                # The stream's worker ended and closed its consumers (the camera was
                # marked unreachable, say): the tile keeps asking for the camera, so it
                # shows it again when it is back, rather than its status for good.
                if self._stop.wait(TILE_POLL_S):
                    break
                subscription = self._subscription = self.stream.subscribe(
                    from_cached_gop=True, max_packets=TILE_QUEUE_PACKETS
                )
        except Exception:
            log.exception("tile decoder of %s failed", self.stream.key)
        finally:
            subscription.close()
