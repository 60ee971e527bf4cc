"""Whether a packet shows the camera live, or is something left over from before a silence.

Why this exists: when a camera (or its platform) goes silent while its connection stays
open, FFmpeg's socket read ends after its ``timeout`` with an error, and libavformat's
``read_frame_internal`` (libavformat/demux.c, "flush the parsers") then flushes the H.264
or H.265 parser and returns the access unit the parser was holding: a frame the camera sent
*before* the silence, handed over ``read_timeout_s`` later as if it had just arrived. The
next read waits a whole time-out again before the error comes through. Without this rule
that one packet turned a stalled camera ``online`` for a read time-out, with a snapshot of
a picture seconds old labelled as fresh. (Measured here: the simulator's server process
stopped with SIGSTOP, read time-out 4 s: one packet 4.1 s after the last, whose pts follows
the last one's by one frame, then the time-out error 4.1 s later. With the parser turned
off, ``fflags=noparse``, the error comes at the first time-out and no packet before it;
the parser cannot be turned off here, as it is what assembles whole access units.)

The rule: a packet that ends a gap of at least ``stall_after_s`` since the packet before it
on the same connection is not live by itself. The stream counts as live again only once
packets *flow*: they keep coming, none of them ``stall_after_s`` or more after the one
before, for at least ``RESUME_SPAN_S`` after the packet that ended the gap. One packet (a
parser's flush), or a burst of buffered ones that stops, never qualifies; a camera that
really sends again qualifies within half a second at any frame rate of 2 fps or more.

The first packet of a new connection is live at once: it was sent after the node's own
PLAY, so it cannot be a leftover, and making it wait would delay every first picture.

What counts as a silence adapts to the stream's own pace: at least ``stall_after_s``, and
at least ``INTERVALS_PER_SILENCE`` of the stream's typical frame interval. Why: a camera
whose frames come further apart than ``stall_after_s`` (1 fps under ``stall_after_s`` 0.8,
or a very slow camera under the default) otherwise "ended a silence" with every packet,
never flowed for ``RESUME_SPAN_S``, and stayed stalled for ever while healthy.

The typical interval is the larger of two lower medians over this connection's last
``INTERVAL_WINDOW`` packets: of their timestamps' steps (the camera's own pace, known from
its second frame and untouched by a freeze: a parser's flushed packet carries the next
frame's timestamp), and of their arrival intervals (for a camera whose timestamps lie).
Arrivals alone would not do: the first packets of a connection come in one burst (FFmpeg
buffers them while it probes the stream), which would make a 1 fps camera stalled for its
first seconds. A lower median ignores up to two long steps or gaps among five, so a fast
camera's figure stays ``stall_after_s`` exactly as before, and a freeze of a slow camera
is still caught after a few of its own intervals. The ingest monitor's stall check uses
the same figure (:attr:`Liveness.silence_after_s`).
"""

from __future__ import annotations

# How long packets must keep flowing after a silence before the stream counts as live.
RESUME_SPAN_S = 0.5
# A silence is this many of the stream's typical packet intervals (or stall_after_s).
INTERVALS_PER_SILENCE = 3.0
# How many recent intervals the typical one is taken from: their lower median ignores up
# to two long gaps among them, and a real change of pace is learnt within three intervals.
INTERVAL_WINDOW = 5


class Liveness:
    """Fed every packet's arrival (monotonic seconds) by one ingest thread; says whether
    that packet shows the camera live. Not thread-safe: one writer."""

    def __init__(self, stall_after_s: float, resume_span_s: float = RESUME_SPAN_S) -> None:
        self.stall_after_s = stall_after_s
        self.resume_span_s = resume_span_s
        self._connection: object | None = None  # identity of the connection being fed
        self._previous_at: float | None = None  # arrival of the packet before, any kind
        self._resuming_since: float | None = None  # arrival of the packet that ended a gap
        # This connection's latest arrival intervals and timestamp steps, oldest first.
        self._arrivals: list[float] = []
        self._steps: list[float] = []
        self._previous_timestamp: float | None = None
        # Read by the monitor thread: one float, replaced whole (see the module's docstring).
        self.silence_after_s = stall_after_s

    @property
    def resuming(self) -> bool:
        """A silence ended, and packets have not yet flowed long enough to count as live."""
        return self._resuming_since is not None

    def feed(
        self,
        now: float,
        connection: object,
        timestamp_s: float | None = None,
        declared_interval_s: float | None = None,
    ) -> bool:
        """True if the packet that arrived at ``now`` on ``connection`` shows the camera
        live. ``timestamp_s``: its decoding (else presentation) time in seconds, if any;
        ``declared_interval_s``: the frame interval the connection declared when it opened
        (1 / its frame rate), the only pace known before its second packet."""
        previous, self._previous_at = self._previous_at, now
        if connection is not self._connection:
            self._connection = connection
            self._resuming_since = None
            self._arrivals.clear()
            self._steps.clear()
            self._previous_timestamp = timestamp_s
            # Until the second packet shows the pace, the declared rate stands in for it: a
            # 1 fps camera under stall_after_s 0.8 would otherwise look silent at every start.
            declared = declared_interval_s or 0.0
            self.silence_after_s = max(self.stall_after_s, INTERVALS_PER_SILENCE * declared)
            return True
        assert previous is not None
        interval = now - previous
        # Judged against the pace learnt *before* this interval: a gap never excuses itself.
        silence = interval >= self.silence_after_s
        self._learn(interval, timestamp_s)
        if silence:
            self._resuming_since = now  # a silence ended (again): start counting afresh
            return False
        if self._resuming_since is None:
            return True
        if now - self._resuming_since >= self.resume_span_s:
            self._resuming_since = None
            return True
        return False

    def _learn(self, interval: float, timestamp_s: float | None) -> None:
        _keep(self._arrivals, interval)
        if timestamp_s is not None:
            previous, self._previous_timestamp = self._previous_timestamp, timestamp_s
            if previous is not None and timestamp_s > previous:
                _keep(self._steps, timestamp_s - previous)
        typical = max(_lower_median(self._arrivals), _lower_median(self._steps))
        self.silence_after_s = max(self.stall_after_s, INTERVALS_PER_SILENCE * typical)


def _keep(window: list[float], value: float) -> None:
    window.append(value)
    if len(window) > INTERVAL_WINDOW:
        del window[0]


def _lower_median(values: list[float]) -> float:
    """0 for none; else the lower median, which long outliers do not pull up."""
    if not values:
        return 0.0
    return sorted(values)[(len(values) - 1) // 2]
