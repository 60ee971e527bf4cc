"""What a camera's packets say about its picture, without decoding any of them.

Per stream, fed with each packet's size, keyframe flag, timestamp and arrival, and read once
a window (the diagnosis interval): the frame rate by timestamps (a frame counts only when
its timestamp moves on, so a camera repeating timestamps is as slow as one sending fewer
frames), and keyframe and P-frame sizes against the camera's own running baseline. A frozen
encoder sends runs of tiny P-frames (nothing changed: skipped macroblocks, ~17 bytes per
frame from x264 in this project's frozen scene, against ~1,900 before it froze); a black or
covered lens makes smaller keyframes, though an encoder's rate control soon spends the
bits it saved on noise, so the keyframe ratio is a figure to show, not a verdict.

Baselines are slow averages of the camera's own windows (BASELINE_WEIGHT per window), left
alone while the window looks faulty, so a fault does not become the camera's normal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BASELINE_WEIGHT = 0.05  # share of a new window in a running baseline (~20 windows' memory)
TINY_P_BYTES = 64  # a P-frame this small carries (next to) nothing: skipped macroblocks
TINY_P_SHARE = 0.1  # or this share of the camera's usual P-frame, whichever is larger
SLOW_RATE_SHARE = 0.5  # a window below this share of the usual frame rate is slow
MIN_WINDOW_S = 0.5  # a shorter window (arrival span) gives no frame rate
MIN_BASELINE_WINDOWS = 3  # windows of a camera before its frame rate baseline is trusted


@dataclass(frozen=True)
class PacketFigures:
    """One window's figures; None where the window had nothing to measure."""

    frame_rate: float | None  # frames per second whose timestamps moved on
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
        self._advancing = 0
        self._last_timestamp: float | None = None
        self._first_timestamp: float | None = None  # of the window
        self._first_arrival: float | None = None
        self._last_arrival: float | None = None
        self._usual_rate: float | None = None
        self._usual_p: float | None = None
        self._usual_key: float | None = None
        self._baseline_windows = 0

    def add(self, size: int, keyframe: bool, timestamp_s: float | None, arrival: float) -> None:
        """One packet: its size in bytes, its timestamp in seconds, its monotonic arrival."""
        (self._key_sizes if keyframe else self._p_sizes).append(size)
        if timestamp_s is not None and (
            self._last_timestamp is None or timestamp_s > self._last_timestamp
        ):
            self._advancing += 1
            self._last_timestamp = timestamp_s
            if self._first_timestamp is None:
                self._first_timestamp = timestamp_s
        if self._first_arrival is None:
            self._first_arrival = arrival
        self._last_arrival = arrival

    def new_connection(self) -> None:
        """Timestamps restart at a reconnect; baselines (the camera's habits) stay."""
        self._last_timestamp = None
        self._clear_window()

    def window(self) -> PacketFigures:
        """The figures of the packets since the last call, and fold them into the baselines."""
        arrived = (
            self._last_arrival - self._first_arrival
            if self._first_arrival is not None and self._last_arrival is not None
            else 0.0
        )
        stamped = (
            self._last_timestamp - self._first_timestamp
            if self._first_timestamp is not None and self._last_timestamp is not None
            else 0.0
        )
        # Over the longer of the two spans: packets that arrive in a burst (a server sending
        # ahead, a network catching up) are not a faster camera, and frames whose timestamps
        # stand still are not frames. One fewer interval than frames seen.
        span = max(arrived, stamped)
        rate = (self._advancing - 1) / span if span >= MIN_WINDOW_S else None
        p_median = float(np.median(self._p_sizes)) if self._p_sizes else None
        key_median = float(np.median(self._key_sizes)) if self._key_sizes else None
        figures = PacketFigures(
            frame_rate=rate,
            usual_frame_rate=self._usual_rate,
            p_median_bytes=p_median,
            usual_p_bytes=self._usual_p,
            keyframe_share=(
                key_median / self._usual_key if key_median is not None and self._usual_key else None
            ),
            packets=len(self._p_sizes) + len(self._key_sizes),
            baseline_windows=self._baseline_windows,
        )
        faulty = figures.slow or figures.tiny_p_frames is True
        if not faulty:
            self._usual_rate = _blend(self._usual_rate, rate)
            self._usual_p = _blend(self._usual_p, p_median)
            self._usual_key = _blend(self._usual_key, key_median)
            self._baseline_windows += rate is not None
        self._clear_window()
        return figures

    def _clear_window(self) -> None:
        self._p_sizes = []
        self._key_sizes = []
        self._advancing = 0
        self._first_timestamp = None
        self._first_arrival = self._last_arrival = None


def _blend(usual: float | None, new: float | None) -> float | None:
    if new is None:
        return usual
    if usual is None:
        return new
    return usual + BASELINE_WEIGHT * (new - usual)
