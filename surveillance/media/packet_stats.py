"""What a camera's packets say about its picture, without decoding any of them.

Per stream, fed with each packet's size, keyframe flag, timestamp and arrival, and read once
a window (the diagnosis interval): the frame rate by arrivals (packets, each one access unit
as ingest hands them on, per second of arrival time), and keyframe and P-frame sizes against
the camera's own running baseline. A frozen encoder may send runs of tiny P-frames (nothing
changed: skipped macroblocks, ~17 bytes per frame from x264 in this project's frozen scene,
against ~1,900 before it froze); a black or covered lens makes smaller keyframes, though an
encoder's rate control soon spends the bits it saved on noise, so these are figures to show,
not verdicts.

The frame rate is not taken from timestamps: whether they advance frame by frame depends on
the source (B-frames come out of order, FFmpeg's RTSP demuxer rebases them at the first RTCP
report, some cameras repeat or invent them), and counting only advancing ones read 5-7 fps
on healthy 25 fps demo cameras. Arrivals are what ingest's own fps figure counts too. Each
window's span runs from the previous window's last packet, so a 1 fps camera sampled every
second still has one interval per packet to measure; the first window of a connection gives
no rate (a burst of what was buffered while connecting is not a faster camera).

Baselines are slow averages of the camera's own windows (BASELINE_WEIGHT per window); a
window that looks faulty moves them far more slowly (FAULTY_BASELINE_WEIGHT), so a fault does
not become the camera's normal within its event, yet a lasting change (a camera reconfigured
to fewer frames) becomes its normal within minutes instead of raising an event for ever.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BASELINE_WEIGHT = 0.05  # share of a new window in a running baseline (~20 windows' memory)
# The share of a faulty window: a halved frame rate stops being "slow" after ~40 windows
# (3-4 minutes at the default 5 s interval).
FAULTY_BASELINE_WEIGHT = 0.01
TINY_P_BYTES = 64  # a P-frame this small carries (next to) nothing: skipped macroblocks
TINY_P_SHARE = 0.1  # or this share of the camera's usual P-frame, whichever is larger
SLOW_RATE_SHARE = 0.5  # a window below this share of the usual frame rate is slow
MIN_WINDOW_S = 0.5  # a shorter window (arrival span) gives no frame rate
MIN_BASELINE_WINDOWS = 3  # windows of a camera before its frame rate baseline is trusted


@dataclass(frozen=True)
class PacketFigures:
    """One window's figures; None where the window had nothing to measure."""

    frame_rate: float | None  # packets (frames) per second of arrival time
    usual_frame_rate: float | None  # the camera's baseline
    p_median_bytes: float | None
    usual_p_bytes: float | None
    keyframe_share: float | None  # median keyframe size / the camera's usual one
    packets: int
    baseline_windows: int = 0  # windows folded into the baselines so far

    @property
    def slow(self) -> bool:
        """The frame rate fell under SLOW_RATE_SHARE of the camera's usual one."""
        if self.frame_rate is None or self.usual_frame_rate is None:
            return False
        if self.baseline_windows < MIN_BASELINE_WINDOWS:
            return False  # a camera's habit is not one window
        return self.frame_rate < SLOW_RATE_SHARE * self.usual_frame_rate

    @property
    def tiny_p_frames(self) -> bool | None:
        """P-frames carry nothing (a frozen encoder); None: no P-frames to judge by."""
        if self.p_median_bytes is None:
            return None
        usual = self.usual_p_bytes or 0.0
        return self.p_median_bytes < max(TINY_P_BYTES, TINY_P_SHARE * usual)


class PacketStats:
    """One stream's running figures. Not thread-safe: one feeder (the diagnosis pump)."""

    def __init__(self) -> None:
        self._p_sizes: list[int] = []
        self._key_sizes: list[int] = []
        self._first_arrival: float | None = None  # of the window
        self._last_arrival: float | None = None
        self._previous_arrival: float | None = None  # the last of the previous window
        self._usual_rate: float | None = None
        self._usual_p: float | None = None
        self._usual_key: float | None = None
        self._baseline_windows = 0

    def add(self, size: int, keyframe: bool, timestamp_s: float | None, arrival: float) -> None:
        """One packet: its size in bytes, its timestamp in seconds (unused: module
        docstring), its monotonic arrival."""
        (self._key_sizes if keyframe else self._p_sizes).append(size)
        if self._first_arrival is None:
            self._first_arrival = arrival
        self._last_arrival = arrival

    def new_connection(self) -> None:
        """A new connection's first packets are no interval after the old one's; baselines
        (the camera's habits) stay."""
        self._previous_arrival = None
        self._clear_window()

    def window(self) -> PacketFigures:
        """The figures of the packets since the last call, and fold them into the baselines."""
        figures = PacketFigures(
            frame_rate=self._frame_rate(),
            usual_frame_rate=self._usual_rate,
            p_median_bytes=_median(self._p_sizes),
            usual_p_bytes=self._usual_p,
            keyframe_share=_share(_median(self._key_sizes), self._usual_key),
            packets=len(self._p_sizes) + len(self._key_sizes),
            baseline_windows=self._baseline_windows,
        )
        faulty = figures.slow or figures.tiny_p_frames is True
        weight = FAULTY_BASELINE_WEIGHT if faulty else BASELINE_WEIGHT
        self._usual_rate = _blend(self._usual_rate, figures.frame_rate, weight)
        self._usual_p = _blend(self._usual_p, figures.p_median_bytes, weight)
        self._usual_key = _blend(self._usual_key, _median(self._key_sizes), weight)
        self._baseline_windows += figures.frame_rate is not None
        if self._last_arrival is not None:
            self._previous_arrival = self._last_arrival
        self._clear_window()
        return figures

    def _frame_rate(self) -> float | None:
        count = len(self._p_sizes) + len(self._key_sizes)
        if self._first_arrival is None or self._last_arrival is None:
            return None  # nothing arrived: the health checks speak of a silent camera
        if self._previous_arrival is None:
            # The first window of a connection measures nothing: FFmpeg hands on what it
            # buffered while probing, and servers send ahead, in one burst.
            return None
        span = self._last_arrival - self._previous_arrival
        return count / span if span >= MIN_WINDOW_S else None

    def _clear_window(self) -> None:
        self._p_sizes = []
        self._key_sizes = []
        self._first_arrival = self._last_arrival = None


def _median(sizes: list[int]) -> float | None:
    return float(np.median(sizes)) if sizes else None


def _share(value: float | None, usual: float | None) -> float | None:
    return value / usual if value is not None and usual else None


def _blend(usual: float | None, new: float | None, weight: float) -> float | None:
    if new is None:
        return usual
    if usual is None:
        return new
    return usual + weight * (new - usual)
