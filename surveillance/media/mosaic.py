"""A server-side mosaic: many cameras composed into one picture, encoded as one H.264 stream.

:class:`MosaicRenderer` runs one compositor thread at the mosaic's frame rate. Each tick it
takes every tile's newest picture from its :class:`TileSource` (which decodes that
camera's stream in its own thread), pastes it in, draws the camera's name and, for a tile
whose picture is older than ``STALE_PICTURE_S``, a dark tile with the state and how long
ago the camera was last seen instead: a frozen picture is never passed off as live.

The result is published two ways:

- as a virtual camera: a :class:`Stream` the encoder delivers H.264 packets to, so the
  WebRTC pass-through track, the cached GOP and the bounded fan-out work on it unchanged.
  The encoder runs only while that stream has consumers (or one is about to subscribe);
- as the newest composed picture, which MJPEG and snapshot readers turn into JPEG at their
  own pace (one JPEG encode per picture, shared by all readers).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2

from surveillance.media.canvas import Rect, U8Array, YuvCanvas, i420_to_bgr
from surveillance.media.encoder import H264Encoder
from surveillance.media.health import StreamState
from surveillance.media.stream import Stream
from surveillance.media.tile_source import TileSource, fit, scale_into

log = logging.getLogger(__name__)

# What a tile shows: ("picture", serial), ("status", title, age line) or ("empty",).
Shown = tuple[Any, ...]

STALE_PICTURE_S = 2.0  # a tile's picture older than this is shown as stale, not as live
VIDEO_LINGER_S = 5.0  # the encoder keeps running this long after video was last wanted
PICTURE_LINGER_S = 5.0  # composed pictures are kept for readers this long after a read
MOSAIC_RING_S = 4.0  # two GOPs of the encoded mosaic: enough for a new viewer's start
MOSAIC_QUEUE_PACKETS = 50  # ~2 s at 25 fps; a viewer further behind skips to a keyframe
JPEG_QUALITY = 80  # 0-100; a 1080p mosaic at 80 is ~300 kB
OPENCV_THREADS = 1  # see start()
SETTLE_POLL_S = 0.05  # how often wait_settled looks at the tiles
TILE_JOIN_S = 2.0  # how long stop() waits for each decoder thread
LABEL_HEIGHT_SHARE = 0.1  # a label band's height as a share of its tile's height
LABEL_MIN_PX = 18  # smallest label band in pixels; Hershey text below this is unreadable
LABEL_MAX_SHARE_OF_OUTPUT = 1 / 27  # largest band: 40 px at 1080p, 80 px at 2160p


@dataclass(frozen=True, slots=True)
class GridCell:
    """A tile's place in a grid of cells (left, top, cells across, cells down)."""

    x: int
    y: int
    w: int = 1
    h: int = 1


@dataclass(frozen=True, slots=True)
class MosaicTile:
    rect: Rect
    label: str  # shown as ASCII (see canvas.ascii_text)
    stream: Stream | None  # None: an empty tile


def _even(value: float) -> int:
    return round(value / 2) * 2


def grid_rects(
    cols: int, rows: int, cells: Sequence[GridCell], width: int, height: int
) -> list[Rect]:
    """Pixel rectangles of grid cells in a ``width`` x ``height`` picture, edges on even
    pixels (I420 chroma is per 2x2 block), tiles touching without gaps or overlap."""
    xs = [_even(i * width / cols) for i in range(cols + 1)]
    ys = [_even(j * height / rows) for j in range(rows + 1)]
    return [Rect(xs[c.x], ys[c.y], xs[c.x + c.w] - xs[c.x], ys[c.y + c.h] - ys[c.y]) for c in cells]


def age_text(seconds: float | None) -> str:
    if seconds is None:
        return "never seen"
    if seconds < 120:
        return f"last seen {seconds:.0f} s ago"
    if seconds < 7200:
        return f"last seen {seconds / 60:.0f} min ago"
    return f"last seen {seconds / 3600:.0f} h ago"


class MosaicRenderer:
    def __init__(self, key: str, tiles: Sequence[MosaicTile], width: int, height: int, fps: int):
        if fps < 1:
            raise ValueError("fps must be at least 1")
        self.key = key
        self.width = width
        self.height = height
        self.fps = fps
        self.tiles = list(tiles)
        self.stream = Stream(
            f"mosaic:{key}", ring_seconds=MOSAIC_RING_S, queue_packets=MOSAIC_QUEUE_PACKETS
        )
        self.stream.health.set_state(StreamState.IDLE)
        self._sources = [
            TileSource(t.stream, t.rect.w, t.rect.h) if t.stream is not None else None
            for t in self.tiles
        ]
        band_max = max(LABEL_MIN_PX, _even(height * LABEL_MAX_SHARE_OF_OUTPUT))
        self._band_px = [
            min(band_max, max(LABEL_MIN_PX, _even(t.rect.h * LABEL_HEIGHT_SHARE)))
            for t in self.tiles
        ]
        self._canvas = YuvCanvas(width, height)
        self._shown: list[Shown | None] = [None] * len(self.tiles)  # what each tile shows
        self._cond = threading.Condition()
        # (seq, monotonic start of its composition, I420), kept while someone reads them
        self._picture: tuple[int, float, U8Array] | None = None
        self._picture_seq = 0
        self._pictures_until = 0.0
        self._jpeg_lock = threading.Lock()
        self._jpeg: tuple[int, bytes] | None = None
        self._video_until = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.frames = 0  # composed
        self.encoded = 0  # encoded and delivered to the stream

    # -- life cycle ---------------------------------------------------------------------
    def start(self) -> None:
        # OpenCV's thread pool makes a tile-sized resize about twice as costly on this
        # 2-core budget (hand-off outweighs the work); the mosaic's parallelism is its
        # decoder threads. Process-wide, and harmless to the other users of OpenCV here
        # (JPEG encoding, which is single-threaded anyway).
        cv2.setNumThreads(OPENCV_THREADS)
        for source in self._sources:
            if source is not None:
                source.start()
        self._thread = threading.Thread(target=self._run, name=f"mosaic:{self.key}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        for source in self._sources:
            if source is not None:
                source.stop()
        with self._cond:
            self._cond.notify_all()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
        for source in self._sources:
            if source is not None:
                source.join(TILE_JOIN_S)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- consumers ----------------------------------------------------------------------
    def wait_settled(self, timeout: float) -> bool:
        """Wait until every tile whose camera is online has a decoded picture."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.running:
            if all(
                source is None
                or source.decoded > 0
                or source.stream.health.state is not StreamState.ONLINE
                for source in self._sources
            ):
                return True
            self._stop.wait(SETTLE_POLL_S)
        return False

    def want_video(self, for_s: float = VIDEO_LINGER_S) -> None:
        """Keep the encoder running for ``for_s`` even without consumers (one is coming)."""
        with self._cond:
            self._video_until = max(self._video_until, time.monotonic() + for_s)

    def wait_picture(
        self, after_seq: int, timeout: float, not_before: float = 0.0
    ) -> tuple[int, U8Array] | None:
        """The newest composed I420 picture newer than ``after_seq`` whose composition
        began at ``not_before`` (monotonic) or later; None on time-out."""

        def newer() -> bool:
            found = self._picture
            return found is not None and found[0] > after_seq and found[1] >= not_before

        with self._cond:
            self._pictures_until = time.monotonic() + PICTURE_LINGER_S
            self._cond.wait_for(lambda: newer() or self._stop.is_set(), timeout)
            if self._picture is None or not newer():
                return None
            return self._picture[0], self._picture[2]

    def jpeg(
        self, after_seq: int, timeout: float, not_before: float = 0.0
    ) -> tuple[int, bytes] | None:
        """The newest picture newer than ``after_seq`` as JPEG, encoded once for everyone."""
        found = self.wait_picture(after_seq, timeout, not_before)
        if found is None:
            return None
        seq, picture = found
        with self._jpeg_lock:
            if self._jpeg is None or self._jpeg[0] != seq:
                ok, buffer = cv2.imencode(
                    ".jpg", i420_to_bgr(picture), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
                )
                if not ok:
                    raise RuntimeError("JPEG encoding failed")
                self._jpeg = (seq, buffer.tobytes())
            return self._jpeg

    def snapshot_jpeg(self, settle_s: float, timeout: float) -> bytes | None:
        """One picture for a one-off reader: of a cold mosaic, the first one composed after
        its tiles got their first pictures (or ``settle_s``), not one still starting."""
        self.wait_settled(settle_s)
        found = self.jpeg(0, timeout, not_before=time.monotonic())
        return None if found is None else found[1]

    # -- compositor thread --------------------------------------------------------------
    def _run(self) -> None:
        encoder: H264Encoder | None = None
        period = 1.0 / self.fps
        index = 0
        next_tick = time.monotonic()
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now < next_tick:
                    self._stop.wait(next_tick - now)
                    continue
                # Behind schedule (a busy machine): skip the ticks already missed rather
                # than rendering a burst of pictures nobody will see in time.
                missed = int((now - next_tick) / period)
                index += missed
                next_tick += (missed + 1) * period
                self._compose(now)
                self.frames += 1
                encoder = self._encode(encoder, index, now)
                index += 1
        except Exception:
            log.exception("mosaic %s failed", self.key)
        finally:
            self._stop.set()
            for source in self._sources:
                if source is not None:
                    source.stop()
            if encoder is not None:
                encoder.close()
            self.stream.close_consumers()
            self.stream.health.set_state(StreamState.IDLE)
            with self._cond:
                self._cond.notify_all()

    def _compose(self, now: float) -> None:
        # Only tiles whose content changed are drawn again: each tile owns its rectangle
        # (picture, letterbox bars, label, status), so the rest of the canvas still holds
        # what they showed. A camera below the mosaic's frame rate, or a status that
        # changes once a second, costs nothing in between.
        canvas = self._canvas
        for index, (tile, source) in enumerate(zip(self.tiles, self._sources, strict=True)):
            rect, band_px = tile.rect, self._band_px[index]
            if source is None:
                shown: Shown = ("empty",)
                if shown != self._shown[index]:
                    canvas.fill(rect)
            else:
                newest = source.newest()
                if newest is not None and now - newest.received_at <= STALE_PICTURE_S:
                    shown = ("picture", newest.serial)
                    if shown != self._shown[index]:
                        self._draw_picture(rect, newest.frame)
                else:
                    shown = ("status", *self._status_lines(source, newest is not None, now))
                    if shown != self._shown[index]:
                        self._draw_status(rect, band_px, shown[1], shown[2])
            if shown == self._shown[index]:
                continue
            self._shown[index] = shown
            if tile.label:  # a transcoder's single tile has none
                canvas.text(Rect(rect.x, rect.y + rect.h - band_px, rect.w, band_px), tile.label)
        with self._cond:
            self._picture_seq += 1
            if now < self._pictures_until:
                self._picture = (self._picture_seq, now, canvas.buffer.copy())
                self._cond.notify_all()

    def _draw_picture(self, rect: Rect, frame: Any) -> None:
        """The picture scaled into ``rect`` with the source's aspect, bars around it."""
        width, height = fit(frame.width, frame.height, rect.w, rect.h)
        if (width, height) != (rect.w, rect.h):
            self._canvas.fill(rect)  # letterbox bars
        x = rect.x + _even((rect.w - width) / 2)
        y = rect.y + _even((rect.h - height) / 2)
        canvas = self._canvas
        cx, cy = x // 2, y // 2
        scale_into(
            frame,
            canvas.y[y : y + height, x : x + width],
            canvas.u[cy : cy + height // 2, cx : cx + width // 2],
            canvas.v[cy : cy + height // 2, cx : cx + width // 2],
        )

    @staticmethod
    def _status_lines(source: TileSource, had_picture: bool, now: float) -> tuple[str, str]:
        """Why there is no live picture, and since when."""
        health = source.stream.health
        state = health.state
        if state is StreamState.ONLINE:
            # Packets arrive but no fresh picture: frozen or undecodable, or still starting.
            title = "STALLED" if had_picture else "CONNECTING"
        else:
            title = state.value.upper()
        return title, age_text(health.last_packet_age(now))

    def _draw_status(self, rect: Rect, band_px: int, title: str, age: str) -> None:
        """A dark tile with the two status lines."""
        self._canvas.fill(rect)
        middle = rect.y + rect.h // 2
        line_px = min(2 * band_px, _even(rect.h / 4))
        self._canvas.text(Rect(rect.x, middle - line_px, rect.w, line_px), title)
        self._canvas.text(Rect(rect.x, middle, rect.w, band_px), age)

    def _encode(self, encoder: H264Encoder | None, index: int, now: float) -> H264Encoder | None:
        with self._cond:
            wanted = now < self._video_until
        if not (wanted or self.stream.consumers):
            if encoder is not None:
                # Nobody watches: stop paying for x264, and forget the old GOP so a later
                # viewer starts at a fresh keyframe, not at a picture from minutes ago.
                encoder.close()
                self.stream.ring.clear()
                self.stream.health.set_state(StreamState.IDLE)
            return None
        if encoder is None:
            encoder = H264Encoder(self.width, self.height, self.fps)
        for packet in encoder.encode(self._canvas.buffer, index):
            self.stream.deliver(packet.data, packet.pts, packet.pts, packet.keyframe, encoder.info)
            self.encoded += 1
        return encoder
