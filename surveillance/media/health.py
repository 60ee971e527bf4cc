"""Health of one stream: its state, why, and the figures an operator needs to trust it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class StreamState(StrEnum):
    CONNECTING = "connecting"  # opening, or waiting to retry after a failure
    ONLINE = "online"  # packets are arriving
    STALLED = "stalled"  # connection open, but no packets for stall_after_s
    OFFLINE = "offline"  # the last attempt failed; ``last_error`` says why
    DISABLED = "disabled"  # turned off in the configuration
    IDLE = "idle"  # on-demand stream with no consumer: not connected on purpose


class ErrorKind(StrEnum):
    AUTH = "auth"
    REFUSED = "refused"
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    NOT_FOUND = "not-found"
    ENDED = "ended"
    UNSUPPORTED = "unsupported"
    STALLED = "stalled"
    PROTOCOL = "protocol"
    REDIRECT = "redirect"  # the camera redirected elsewhere and the node refused to follow
    OTHER = "other"


@dataclass(frozen=True)
class HealthSnapshot:
    """A consistent copy for readers (API, metrics); all ages in seconds."""

    state: StreamState
    state_since: float  # time.time()
    last_packet_age_s: float | None
    fps: float | None
    bitrate_kbps: float | None
    codec: str | None
    profile: str | None
    width: int | None
    height: int | None
    reconnects: int
    last_error: str | None
    last_error_kind: ErrorKind | None
    last_error_at: float | None
    packets: int
    bytes: int
    ring_bytes: int
    ring_seconds: float
    consumers: int
    dropped_by_consumers: int


class StreamHealth:
    """Mutable health, written by one ingest thread and the monitor, read by anyone.

    Per-packet updates are two integer additions and a float store; rates are derived by
    the monitor once a second from counter deltas, not per packet.
    """

    def __init__(
        self,
        state: StreamState = StreamState.CONNECTING,
        on_state_change: Callable[[], None] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        # Called (outside the lock, from whichever thread changed it) after every change of
        # state: the stream wakes whoever waits for its first picture.
        self._on_state_change = on_state_change
        self.state = state
        self.state_since = time.time()
        self.last_packet_at: float | None = None  # time.monotonic()
        # time.monotonic() when the current RTSP session was set up (None while not open):
        # a session that stays silent from the start is a stall too.
        self.session_opened_at: float | None = None
        self.packets = 0
        self.bytes = 0
        self.reconnects = 0
        # Failed connection attempts since the worker was (re)started or the stream last
        # delivered a packet: while it is above zero, a connecting stream is retrying, and
        # whoever asks for a picture is told why it failed instead of waiting.
        self.failed_attempts = 0
        self.codec: str | None = None
        self.profile: str | None = None
        self.width: int | None = None
        self.height: int | None = None
        self.last_error: str | None = None
        self.last_error_kind: ErrorKind | None = None
        self.last_error_at: float | None = None
        self.fps: float | None = None
        self.bitrate_kbps: float | None = None
        self._rate_mark: tuple[float, int, int] | None = None

    def set_state(self, state: StreamState) -> None:
        with self._lock:
            changed = state is not self.state
            if changed:
                self.state = state
                self.state_since = time.time()
            if state is not StreamState.ONLINE and state is not StreamState.STALLED:
                self.fps = None
                self.bitrate_kbps = None
                self._rate_mark = None
        if changed and self._on_state_change is not None:
            self._on_state_change()

    def set_error(self, kind: ErrorKind, message: str, state: StreamState) -> None:
        with self._lock:
            self.last_error_kind = kind
            self.last_error = message
            self.last_error_at = time.time()
        self.set_state(state)

    def packet(self, size: int, now: float) -> None:
        self.packets += 1
        self.bytes += size
        self.last_packet_at = now

    def update_rates(self, now: float) -> None:
        """Called by the monitor about once a second."""
        with self._lock:
            mark = self._rate_mark
            self._rate_mark = (now, self.packets, self.bytes)
            if mark is None or self.state not in (StreamState.ONLINE, StreamState.STALLED):
                return
            elapsed = now - mark[0]
            if elapsed <= 0:
                return
            self.fps = (self.packets - mark[1]) / elapsed
            self.bitrate_kbps = (self.bytes - mark[2]) * 8 / 1000 / elapsed

    def last_packet_age(self, now: float) -> float | None:
        at = self.last_packet_at
        return None if at is None else max(0.0, now - at)

    def snapshot(
        self, ring_bytes: int, ring_seconds: float, consumers: int, dropped: int
    ) -> HealthSnapshot:
        now = time.monotonic()
        with self._lock:
            return HealthSnapshot(
                state=self.state,
                state_since=self.state_since,
                last_packet_age_s=self.last_packet_age(now),
                fps=self.fps,
                bitrate_kbps=self.bitrate_kbps,
                codec=self.codec,
                profile=self.profile,
                width=self.width,
                height=self.height,
                reconnects=self.reconnects,
                last_error=self.last_error,
                last_error_kind=self.last_error_kind,
                last_error_at=self.last_error_at,
                packets=self.packets,
                bytes=self.bytes,
                ring_bytes=ring_bytes,
                ring_seconds=ring_seconds,
                consumers=consumers,
                dropped_by_consumers=dropped,
            )
