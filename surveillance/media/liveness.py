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
"""

from __future__ import annotations

# How long packets must keep flowing after a silence before the stream counts as live.
RESUME_SPAN_S = 0.5


class Liveness:
    """Fed every packet's arrival (monotonic seconds) by one ingest thread; says whether
    that packet shows the camera live. Not thread-safe: one writer."""

    def __init__(self, stall_after_s: float, resume_span_s: float = RESUME_SPAN_S) -> None:
        self.stall_after_s = stall_after_s
        self.resume_span_s = resume_span_s
        self._connection: object | None = None  # identity of the connection being fed
        self._previous_at: float | None = None  # arrival of the packet before, any kind
        self._resuming_since: float | None = None  # arrival of the packet that ended a gap

    @property
    def resuming(self) -> bool:
        """A silence ended, and packets have not yet flowed long enough to count as live."""
        return self._resuming_since is not None

    def feed(self, now: float, connection: object) -> bool:
        """True if the packet that arrived at ``now`` on ``connection`` shows the camera live."""
        previous, self._previous_at = self._previous_at, now
        if connection is not self._connection:
            self._connection = connection
            self._resuming_since = None
            return True
        assert previous is not None
        if now - previous >= self.stall_after_s:
            self._resuming_since = now  # a silence ended (again): start counting afresh
            return False
        if self._resuming_since is None:
            return True
        if now - self._resuming_since >= self.resume_span_s:
            self._resuming_since = None
            return True
        return False
