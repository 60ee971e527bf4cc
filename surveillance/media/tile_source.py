"""One mosaic tile's camera: every packet decoded in its own thread, scaled only when taken.

A P-frame needs the pictures before it, so the decoder must see every packet of the
(sub-)stream; but the compositor wants at most one picture per mosaic frame, at the tile's
size. So the thread only decodes and keeps the newest picture, and scaling (the costly
part after decoding) happens in :meth:`TileSource.take`, once per new picture actually
shown.
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
class TilePicture:
    i420: U8Array  # the scaled picture, PyAV's yuv420p ndarray layout
    width: int  # fitted into the tile with the source's aspect ratio kept
    height: int
    received_at: float  # monotonic arrival of the packet that completed it


def fit(source_w: int, source_h: int, box_w: int, box_h: int) -> tuple[int, int]:
    """The even-sided size of a ``source_w`` x ``source_h`` picture shown inside the box."""
    scale = min(box_w / source_w, box_h / source_h)
    width = min(box_w, max(2, round(source_w * scale / 2) * 2))
    height = min(box_h, max(2, round(source_h * scale / 2) * 2))
    if abs(width / box_w - 1) < ASPECT_TOLERANCE and abs(height / box_h - 1) < ASPECT_TOLERANCE:
        return box_w, box_h
    return width, height


def scale_i420(frame: Any, width: int, height: int) -> U8Array:
    """A decoded picture as I420 of ``width`` x ``height`` (PyAV's ``to_ndarray`` layout).

    Video-range 4:2:0, what cameras send, is resized plane by plane with OpenCV, about
    twice as fast here as swscale through PyAV; anything else goes through swscale,
    which also converts range and chroma layout.
    """
    fw, fh = frame.width, frame.height
    if frame.format.name != "yuv420p" or fw % 2 or fh % 2:
        scaled = frame.reformat(
            width=width, height=height, format="yuv420p", interpolation=SCALE_INTERPOLATION
        )
        return np.asarray(scaled.to_ndarray(), dtype=np.uint8)
    flat = frame.to_ndarray().reshape(-1)
    luma, chroma = fw * fh, (fw // 2) * (fh // 2)
    planes = (
        (flat[:luma].reshape(fh, fw), (width, height)),
        (flat[luma : luma + chroma].reshape(fh // 2, fw // 2), (width // 2, height // 2)),
        (flat[luma + chroma :].reshape(fh // 2, fw // 2), (width // 2, height // 2)),
    )
    out = [
        cv2.resize(plane, size, interpolation=cv2.INTER_LINEAR).reshape(-1)
        for plane, size in planes
    ]
    return np.concatenate(out).reshape(height * 3 // 2, width)


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
        self._scaled: TilePicture | None = None
        self._scaled_serial = 0
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

    def take(self) -> TilePicture | None:
        """The newest picture at the tile's size; scaled again only if it changed."""
        with self._lock:
            frame, serial, received_at = self._frame, self._frame_serial, self._frame_received_at
        if frame is None:
            return None
        if serial != self._scaled_serial:
            width, height = fit(frame.width, frame.height, self.width, self.height)
            self._scaled = TilePicture(scale_i420(frame, width, height), width, height, received_at)
            self._scaled_serial = serial
        return self._scaled

    def _new_decoder(self, info: StreamInfo) -> Any:
        ctx = new_decoder(info)
        # One thread per tile already; codec threads on top only add switching.
        ctx.thread_count = 1
        if self.width <= info.width * SKIP_DEBLOCK_AT_SCALE:
            ctx.options = {"skip_loop_filter": "all"}
        return ctx

    def _run(self, subscription: Subscription) -> None:
        try:
            for packet, frame in follow_decoded(
                subscription, self._stop.is_set, TILE_POLL_S, self._new_decoder
            ):
                self.decoded += 1
                with self._lock:
                    self._frame = frame
                    self._frame_received_at = packet.received_at
                    self._frame_serial += 1
        except Exception:
            log.exception("tile decoder of %s failed", self.stream.key)
        finally:
            subscription.close()
