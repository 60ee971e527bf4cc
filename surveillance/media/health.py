"""Health of one stream: its state, why, and the figures an operator needs to trust it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class StreamState(StrEnum):
    CONNECTING = "connecting"  # opening for the first time since the worker started
    ONLINE = "online"  # packets are flowing (media/liveness.py says when that is so again)
    STALLED = "stalled"  # connection open, but no live packets for stall_after_s
    # The last attempt failed; ``last_error`` says why. A camera stays offline while it
    # retries: ``retry_at`` says when the next attempt is, ``attempting`` whether one runs.
    OFFLINE = "offline"
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


# Which failure stays shown as the stream's ``warning`` when others follow it, worst first:
# FFmpeg went to another host and may have sent it the camera's credentials (the operator
# must hear of it even after the next attempt fails for a plainer reason); a redirect the
# node refused; a refused password; a missing path or codec. The rest (refused, time-outs,
# stalls) mend themselves or not; among equals the newest is shown.
CREDENTIALS_EXPOSED_SEVERITY = 4
_SEVERITY = {
    ErrorKind.REDIRECT: 3,
    ErrorKind.AUTH: 2,
    ErrorKind.NOT_FOUND: 1,
    ErrorKind.UNSUPPORTED: 1,
}
# A warning is cleared once the stream has been online this long without a break.
WARNING_CLEARS_AFTER_ONLINE_S = 60.0


def severity(kind: ErrorKind, *, credentials_exposed: bool = False) -> int:
    return CREDENTIALS_EXPOSED_SEVERITY if credentials_exposed else _SEVERITY.get(kind, 0)


@dataclass(frozen=True)
class HealthSnapshot:
    """A consistent copy for readers (API, metrics); all ages in seconds."""

    state: StreamState
    state_since: float  # time.time()
    last_packet_age_s: float | None  # of the last live packet (media/liveness.py)
    last_live_at: float | None  # time.time() of the last live packet: "last seen"
    retry_at: float | None  # time.time() of the next connection attempt, while retrying
    attempting: bool  # a connection attempt is under way
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
    warning: str | None  # the most serious failure since the stream was last steadily online
    warning_kind: ErrorKind | None
    warning_at: float | None
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
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        # Called (outside the lock, from whichever thread made it) after every change an
        # operator sees: state, error, warning, retry. The stream wakes whoever waits for
        # its first picture and tells the health events (services/health_events.py).
        # Never per packet.
        self._on_change = on_change
        self.state = state
        self.state_since = time.time()
        # time.monotonic() of the last *live* packet (media/liveness.py): a packet left over
        # from before a silence does not refresh it. "Last seen" is derived from it.
        self.last_packet_at: float | None = None
        self.retry_at: float | None = None  # time.time()
        self.attempting = False
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
        self.warning: str | None = None
        self.warning_kind: ErrorKind | None = None
        self.warning_at: float | None = None
        self._warning_severity = 0
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
        if changed:
            self._changed()

    def set_error(
        self,
        kind: ErrorKind,
        message: str,
        state: StreamState,
        *,
        credentials_exposed: bool = False,
    ) -> None:
        """Record a failure and the state it leaves the stream in. The failure also becomes
        the ``warning`` unless a more serious one is shown already."""
        now = time.time()
        rank = severity(kind, credentials_exposed=credentials_exposed)
        with self._lock:
            self.last_error_kind = kind
            self.last_error = message
            self.last_error_at = now
            if self.warning is None or rank >= self._warning_severity:
                self.warning_kind, self.warning, self.warning_at = kind, message, now
                self._warning_severity = rank
        state_changed = state is not self.state
        self.set_state(state)
        if not state_changed:
            self._changed()  # a new reason in the same state is news too

    def set_retry(self, retry_at: float | None, *, attempting: bool) -> None:
        """When the next attempt is (time.time(), None for none planned), and whether one
        is under way."""
        with self._lock:
            changed = (retry_at, attempting) != (self.retry_at, self.attempting)
            self.retry_at, self.attempting = retry_at, attempting
        if changed:
            self._changed()

    def clear_warning_if_steady(self, now: float) -> None:
        """Called by the monitor: forget the warning once the stream has been online for
        ``WARNING_CLEARS_AFTER_ONLINE_S`` without a break (``now``: time.time())."""
        with self._lock:
            steady = (
                self.warning is not None
                and self.state is StreamState.ONLINE
                and now - self.state_since >= WARNING_CLEARS_AFTER_ONLINE_S
            )
            if steady:
                self.warning = self.warning_kind = self.warning_at = None
        if steady:
            self._changed()

    def clear_warning(self, kind: ErrorKind) -> None:
        """Forget the warning if it is of this kind: its cause is gone (a camera that could
        not be reached can be again), so it would only mislead."""
        with self._lock:
            cleared = self.warning is not None and self.warning_kind is kind
            if cleared:
                self.warning = self.warning_kind = self.warning_at = None
                self._warning_severity = 0
        if cleared:
            self._changed()

    def forget_error(self, kind: ErrorKind) -> None:
        """Forget the last error (and warning) if it is of this kind: it said where the
        stream was, not what went wrong with the camera (a camera held by another node,
        now read here), so keeping it beside "online" would mislead."""
        with self._lock:
            forgotten = self.last_error is not None and self.last_error_kind is kind
            if forgotten:
                self.last_error = self.last_error_kind = self.last_error_at = None
                if self.warning_kind is kind:
                    self.warning = self.warning_kind = self.warning_at = None
                    self._warning_severity = 0
        if forgotten:
            self._changed()

    def packet(self, size: int, now: float, *, live: bool = True) -> None:
        """Count a packet; only a live one (media/liveness.py) is the last one seen."""
        self.packets += 1
        self.bytes += size
        if live:
            self.last_packet_at = now

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()

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
        wall_now = time.time()
        with self._lock:
            age = self.last_packet_age(now)
            return HealthSnapshot(
                state=self.state,
                state_since=self.state_since,
                last_packet_age_s=age,
                last_live_at=None if age is None else wall_now - age,
                retry_at=self.retry_at,
                attempting=self.attempting,
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
                warning=self.warning,
                warning_kind=self.warning_kind,
                warning_at=self.warning_at,
                packets=self.packets,
                bytes=self.bytes,
                ring_bytes=ring_bytes,
                ring_seconds=ring_seconds,
                consumers=consumers,
                dropped_by_consumers=dropped,
            )
