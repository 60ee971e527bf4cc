"""Pictures as a viewer receives them, and when the view first moved, for ``bench.onvif``.

Two sources, each read in a thread of its own and decoded with one decoder thread (frame
threading would hold pictures back by a frame or more):

- :class:`MseFrames`: the wall's own stream, ``/api/live/mse`` (a JSON line, an fMP4 init
  segment, then a media segment per frame), decoded from the samples of each ``mdat`` with
  the init segment's ``avcC`` as the decoder's configuration;
- :class:`RtspFrames`: the simulator's RTSP mount straight, the baseline.

:meth:`FrameWatch.moved_after` finds the first picture received after a moment that differs
from the last one received before it by the simulator's own measure of a moved view
(surveillance/simulator/picture_change.py).
"""

from __future__ import annotations

import collections
import json
import threading
import time
from typing import Any

import av
import numpy as np
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as websocket_connect

from surveillance.simulator.picture_change import MOVED_THRESHOLD, difference

KEEP_FRAMES = 200  # 20 s at the simulator's 10 fps: more than a trial lasts
POLL_S = 0.01
OPEN_TIMEOUT_S = 15.0
READ_TIMEOUT_S = 2.0  # a read this long without data ends a reader's wait to look at stop


class FrameWatch:
    """Received pictures (monotonic arrival time, grey picture), the newest kept."""

    def __init__(self) -> None:
        self._frames: collections.deque[tuple[float, np.ndarray]] = collections.deque(
            maxlen=KEEP_FRAMES
        )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name=type(self).__name__, daemon=True)
        self.error: str | None = None
        self.received = 0

    def start(self) -> FrameWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=OPEN_TIMEOUT_S)

    def _read(self) -> None:
        try:
            self.read_until(self._stop)
        except Exception as exc:  # reported with the figures, not a crash of the run
            self.error = f"{type(exc).__name__}: {exc}"

    def read_until(self, stop: threading.Event) -> None:
        raise NotImplementedError

    def add(self, picture: np.ndarray) -> None:
        with self._lock:
            self._frames.append((time.monotonic(), picture))
            self.received += 1

    def frames(self) -> list[tuple[float, np.ndarray]]:
        with self._lock:
            return list(self._frames)

    def wait_frames(self, count: int, after: float, timeout_s: float) -> bool:
        """True once ``count`` pictures arrived after ``after``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if sum(t >= after for t, _ in self.frames()) >= count:
                return True
            time.sleep(POLL_S)
        return False

    def still(self, since: float) -> bool:
        """Whether every picture received since ``since`` is the same view as the last."""
        recent = [p for t, p in self.frames() if t >= since]
        return len(recent) >= 2 and all(
            difference(p, recent[-1]) < MOVED_THRESHOLD for p in recent[:-1]
        )

    def moved_after(self, at: float, timeout_s: float) -> float | None:
        """Seconds from ``at`` to the first picture received after it that shows a moved
        view (against the last picture received before it); None if none in time."""
        deadline = at + timeout_s
        while True:
            frames = self.frames()
            before = [p for t, p in frames if t < at]
            if before:
                for t, picture in frames:
                    if t >= at and difference(before[-1], picture) > MOVED_THRESHOLD:
                        return t - at
            if time.monotonic() > deadline:
                return None
            time.sleep(POLL_S)


class RtspFrames(FrameWatch):
    """The mount straight from the simulator, over RTSP/TCP (the baseline)."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    def read_until(self, stop: threading.Event) -> None:
        # No probing: at 10 fps FFmpeg would read ~3 s of stream before av.open returns.
        options = {"rtsp_transport": "tcp", "fflags": "nobuffer", "flags": "low_delay",
                   "analyzeduration": "0", "probesize": "32"}  # fmt: skip
        with av.open(self.url, options=options, timeout=(OPEN_TIMEOUT_S, READ_TIMEOUT_S)) as box:
            stream = box.streams.video[0]
            stream.codec_context.thread_count = 1
            for packet in box.demux(stream):
                if stop.is_set():
                    return
                for frame in packet.decode():
                    self.add(frame.to_ndarray(format="gray"))


class MseFrames(FrameWatch):
    """The wall's fMP4 WebSocket for one camera, as a signed-in user opens it."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        super().__init__()
        self.url = url
        self._headers = headers
        self.mime: str | None = None

    def read_until(self, stop: threading.Event) -> None:
        decoder: Any = None
        with websocket_connect(
            self.url, additional_headers=self._headers, open_timeout=OPEN_TIMEOUT_S, max_queue=None
        ) as socket:
            while not stop.is_set():
                try:
                    message = socket.recv(timeout=READ_TIMEOUT_S)
                except TimeoutError:
                    continue
                except ConnectionClosed:
                    return
                if isinstance(message, str):
                    self._text(json.loads(message))
                    continue
                if _box(message, b"moov") is not None:
                    decoder = _decoder(message)
                    continue
                sample = _box(message, b"mdat")
                if decoder is None or sample is None:
                    continue
                for frame in decoder.decode(av.Packet(sample)):
                    self.add(frame.to_ndarray(format="gray"))

    def _text(self, message: dict[str, Any]) -> None:
        if message.get("type") == "error":
            raise RuntimeError(f"the live stream refused: {message.get('detail')}")
        self.mime = message.get("mime") or self.mime


def _box(data: bytes, kind: bytes) -> bytes | None:
    """The payload of the first top-level ISO BMFF box of type ``kind`` (ISO/IEC 14496-12
    s.4.2: 32-bit size including the 8-byte header; 1 = a 64-bit size follows)."""
    at = 0
    while at + 8 <= len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        header = 8
        if size == 1:
            size, header = int.from_bytes(data[at + 8 : at + 16], "big"), 16
        elif size == 0:
            size = len(data) - at
        if data[at + 4 : at + 8] == kind:
            return data[at + header : at + size]
        if size < header:
            return None
        at += size
    return None


def _decoder(init: bytes) -> Any:
    """An H.264 decoder configured by the init segment's ``avcC`` (ISO/IEC 14496-15
    s.5.3.3: the samples are then length-prefixed NAL units)."""
    found = init.find(b"avcC")
    if found < 4:
        raise RuntimeError("the live stream's init segment has no avcC (not H.264?)")
    size = int.from_bytes(init[found - 4 : found], "big")
    decoder: Any = av.CodecContext.create("h264", "r")
    decoder.extradata = init[found + 4 : found - 4 + size]
    decoder.thread_count = 1
    return decoder
