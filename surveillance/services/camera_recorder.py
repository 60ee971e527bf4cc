"""One recorded camera stream: its subscription, its open segment, its gaps and its state.

Everything here runs on one writer thread (services/recorder.py), which calls :meth:`pump`
a few times a second: the packets queued since are written in one go, then the stream's
health is looked at. Nothing here is ever called by the ingest thread, which only offers
packets to the subscription (media/fanout.py) and so is never slowed by a disk.

A segment holds the packets of one connection, without a hole: it is closed at the first
keyframe after ``segment_s``, when the connection changes (a new ``StreamInfo``), when a
packet is missing (the subscription fell behind and dropped some), at the first keyframe
after the camera's clock strayed from the packets' arrival (CLOCK_AHEAD_S), when the
camera stops delivering, when a write fails, and at shutdown. A segment's start and end
are arrival (wall-clock) times: the index never holds footage in the future. Whatever
the recorder could not record becomes a gap row with its reason. A gap is written the
moment it is known to be one (an outage, a failed write); the short hole of a quick
reconnect (or of packets that came late) becomes a row only when it is longer than
``MIN_GAP_S``, since the recordings API merges spans closer than that anyway.

Cluster mode: a node that lost a camera's lease (paused past it, cut off from the
database) never touches that camera's files or rows again. Another node may have taken
the camera over and salvaged the open segment (services/recording_reconcile.py): a
packet written into that file, a cut or a removal of it would break the hash its row now
holds. So before each write to a segment file, and before closing, cutting or removing
one, the recorder asks ``holds(camera)``; when the lease is gone it drops its writer
(media/recording_file.py ``SegmentWriter.drop``: not another byte) and leaves the open
row and the file to the new owner, says so once, and records the camera no more while it
is held elsewhere. Rows it writes for the camera (segments, gaps) are fenced by the lease
in their transaction (recordings/store.py), and a refusal drops the writer the same way.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from surveillance.cluster.errors import LeaseLost
from surveillance.config.models import RecordingConfig
from surveillance.media.fanout import Subscription
from surveillance.media.health import ErrorKind, StreamState
from surveillance.media.packets import Packet, StreamInfo
from surveillance.media.recording_file import MAX_EARLY_ARRIVAL_S, SegmentFacts, SegmentWriter
from surveillance.media.recording_read import SegmentRef
from surveillance.media.stream import Stream
from surveillance.recordings.layout import SEGMENT_ID_PLACEHOLDER, segment_path
from surveillance.recordings.records import MAX_SEGMENT_S
from surveillance.recordings.store import RecordingStore, SegmentNotOpen
from surveillance.services.ingest import ELSEWHERE as HELD_ELSEWHERE
from surveillance.services.recording_state import RecordingState, RecordingStatus

log = logging.getLogger(__name__)

TAKE_LIMIT = 10_000  # packets written per pump at most (more than a subscription holds)
ELSEWHERE = "recorded by the node that holds the camera"  # cluster mode
RETRY_AFTER_ERROR_S = 5.0  # a failed write or a full disk is tried again this often
# A segment's start and end are wall-clock facts: the camera's clock only spaces the
# packets inside it (media/recording_file.py takes a jump of that clock out of the
# timeline). A segment that follows another on the same connection starts where that one
# ended, unless its keyframe arrived further from there than this: then at its arrival.
RESYNC_S = 1.0
# Checked at every packet: where the segment's timeline puts it against when it arrived.
# Ahead by more than CLOCK_AHEAD_S is the camera's clock running fast or jumping in steps
# too small to tell from lost packets (a packet arrives late, never early, so footage
# dated by its own clock would lie in the future); behind by more than CLOCK_LATE_S is a
# hold-up or a slow clock. Either way the segment ends at the next keyframe and the next
# one is dated by arrival; meanwhile the end is held to the last arrival (_ahead_s).
CLOCK_AHEAD_S = 1.5
CLOCK_LATE_S = 4.0
CLOCK_LOG_EVERY_S = 600.0  # a camera's clock trouble is logged at most this often
ASSUMED_FPS = 25.0  # a stream that does not say its frame rate
SETTLE_S = 1.5  # a new connection's packets held this long to date it (_hold)
MIN_GAP_S = 1.0  # a hole between two segments shorter than this is not a gap row
# Cluster mode: how long after ``holds(camera)`` last said yes the recorder still writes
# and closes its segment: a lost lease turns holds() false LEASE_MARGIN_S (1 s) before the
# database lets another node claim the camera, so what starts within this margin of a yes
# ends before anyone can take the file over. A recorder that comes back later (its
# process was paused) finds it past and drops the segment instead, unless the node
# handed the camera off (_handing_off): then the segment closes as at any stop.
LETTING_GO_S = 0.5
LEASE_LOST = "lease lost: the node that holds the camera now records it"
DATABASE_DOWN = "database unreachable: the index catches up when it answers again"
SEGMENT_DIR_MODE = 0o700

# Why a segment was closed (recording_segments.closed_reason).
CLOSED_ROLLOVER = "segment length reached"
CLOSED_RECONNECT = "camera reconnected"
CLOSED_STOPPED_DELIVERING = "camera stopped delivering"
CLOSED_FELL_BEHIND = "recorder fell behind"
CLOSED_CLOCK = "camera clock disagrees with arrival"
CLOSED_SHUTDOWN = "shutdown"
CLOSED_REMOVED = "camera removed"  # from the catalog while the node runs
# Gap reasons of the recorder's own (a camera's outage gives the camera's reason).
GAP_FELL_BEHIND = "recorder fell behind"
GAP_DISK_FULL = "disk full"
GAP_READ_ONLY = "recording directory is read-only"
GAP_SHUTDOWN = "node stopped"
GAP_HELD_UP = "camera stream arrived late"

# The camera is not delivering: close what is open, show the camera's reason. A stream that
# is connecting again after a failed attempt counts too (media/stream.py does the same).
_FAILING = (StreamState.OFFLINE, StreamState.STALLED, StreamState.DISABLED, StreamState.IDLE)


def close_with_facts(
    store: RecordingStore,
    segment_id: int,
    end_at: float,
    facts: SegmentFacts,
    reason: str,
    *,
    fenced: bool = True,
) -> None:
    """Close a segment's row with what its file holds (the recorder's and the reconcile's)."""
    store.close_segment(
        segment_id,
        end_at=end_at,
        bytes=facts.bytes,
        sha256=facts.sha256,
        frames=facts.frames,
        init_bytes=facts.init_bytes,
        keyframes=facts.keyframes,
        reason=reason,
        fenced=fenced,
    )


def wall_time(received_at: float) -> float:
    """Epoch s of a packet's ``received_at`` (time.monotonic())."""
    return time.time() - (time.monotonic() - received_at)


def _before_clock_jump(held: list[Packet], known: list[tuple[int, int]]) -> int:
    """How many of the held packets' timestamps (index, ticks) come before a jump of the
    camera's clock (the writer's rule, media/recording_file.py): the ones after it would
    date the segment by the jump."""
    tick_s = float(held[0].info.time_base)
    for n, ((i, t), (j, u)) in enumerate(itertools.pairwise(known), start=1):
        media_s = (u - t) * tick_s
        arrival_s = held[j].received_at - held[i].received_at
        # Without a dts a B-frame's pts steps back a frame or two: not a jump.
        if media_s < -MAX_EARLY_ARRIVAL_S or media_s - arrival_s > MAX_EARLY_ARRIVAL_S:
            return n
    return len(known)


def write_failure(error: Exception) -> tuple[RecordingState, str]:
    """The state and gap reason of a failed write (or of a stream the muxer refuses)."""
    if not isinstance(error, OSError):
        return RecordingState.ERROR, f"cannot record this stream: {error}"
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return RecordingState.DISK_FULL, GAP_DISK_FULL
    if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return RecordingState.ERROR, GAP_READ_ONLY
    return RecordingState.ERROR, f"cannot write recordings: {error.strerror or error}"


@dataclass
class _OpenSegment:
    segment_id: int
    path: Path
    writer: SegmentWriter
    info: StreamInfo
    start_at: float  # epoch s of its first packet
    start_mono: float  # start_at on the monotonic clock (packets' received_at)
    first_received: float  # monotonic, of its first packet
    last_seq: int
    last_received: float  # monotonic, of the last packet written
    published_s: float = -1.0  # writer.duration_s when open_ref was last made
    resync: str | None = None  # why the next keyframe starts a segment dated by arrival
    jumps_seen: int = 0  # the writer's clock_jumps already logged


@dataclass
class _Gap:
    start_at: float
    reason: str
    gap_id: int | None = None  # None: not written yet


class CameraRecorder:
    def __init__(
        self,
        camera_id: str,
        stream_name: str,
        stream: Stream,
        subscription: Subscription,
        store: RecordingStore,
        root: Path,
        settings: RecordingConfig,
        *,
        note: str | None = None,
        space_low: Callable[[], None] = lambda: None,
        holds: Callable[[str], bool] = lambda camera_id: True,
        reads: Callable[[str], bool] | None = None,
    ) -> None:
        """``note``: said in the status while recording (the sub-stream fallback, say);
        ``space_low``: called (on this thread) when free space is below the minimum, so
        retention runs at once; ``holds(camera_id)``: whether this node reads the camera
        (cluster mode: another node's camera is recorded there, and no gap is written
        here for it); ``reads(camera_id)``: whether it still reads it (default: holds):
        past the lease's deadline only through a database outage every node shares, when
        nobody can claim the camera, so its open segment goes on (see _through_outage)."""
        self.camera_id = camera_id
        self.stream_name = stream_name
        self._stream = stream
        self._subscription = subscription
        self._store = store
        self._root = root
        self._settings = settings
        self._note = note
        self._space_low = space_low
        self._holds = holds
        self._reads = reads or holds
        self._open: _OpenSegment | None = None
        self._gap: _Gap | None = None
        self._held: list[Packet] = []  # a new connection's first packets (_hold)
        self._last_info: StreamInfo | None = None  # of the last segment started
        self._covered_until = time.time()  # epoch s up to which footage or a gap accounts
        self._last_end: float | None = None  # epoch s where the last closed segment ended
        self._retry_at = 0.0  # monotonic; no new segment before it
        self._lease_lost_logged = False
        self._database_down_logged = False
        # A segment whose file is complete but whose row could not be closed (the database
        # did not answer): closed at the next start, before anything else is written.
        self._unclosed: tuple[int, float, SegmentFacts, str] | None = None
        self._held_at = time.monotonic()  # when holds() last said yes (_mine)
        self._clock_logged_at = -CLOCK_LOG_EVERY_S  # monotonic
        self._status = RecordingStatus(
            RecordingState.WAITING, stream_name, "waiting for the camera's first keyframe",
            time.time(), None,
        )  # fmt: skip
        # Read by any thread (API); replaced, never mutated, by this one.
        self.open_ref: SegmentRef | None = None

    # -- the writer thread's calls ------------------------------------------------------------
    def pump(self) -> None:
        """Write what is queued, then react to the stream's health."""
        if self._subscription.closed:
            # The stream's worker ended (the camera was unreachable, say) and closed its
            # consumers: the recording follows the stream again when it comes back.
            # Not from the cached GOP: its packets may be written already.
            self._subscription = self._stream.subscribe(
                from_cached_gop=False, max_packets=self._subscription.max_packets
            )
        for packet in self._subscription.take_pending(TAKE_LIMIT):
            self._packet(packet)
        self._watch_health()
        self._publish_open_ref()

    def finish(self) -> None:
        """At shutdown: write what is queued, close the segment, leave a gap open until the
        next start (reconcile ends it then)."""
        with contextlib.suppress(Exception):
            for packet in self._subscription.take_pending(TAKE_LIMIT):
                self._packet(packet)
        self._subscription.close()
        self._release_held()
        if self._open is not None:
            self._close(CLOSED_SHUTDOWN)
        if self._holds(self.camera_id):  # another node's camera: no gap of ours
            self._begin_gap(self._covered_until, GAP_SHUTDOWN, write=True)
        self._set_status(RecordingState.OFF, "the node stopped")

    def retire(self) -> None:
        """The camera left the catalog: write what is queued, close the segment and any gap
        (its footage stays, as a camera's taken out of the configuration does)."""
        with contextlib.suppress(Exception):
            for packet in self._subscription.take_pending(TAKE_LIMIT):
                self._packet(packet)
        self._subscription.close()
        self._release_held()
        if self._open is not None:
            self._close(CLOSED_REMOVED)
        self._end_gap(time.time())
        self._set_status(RecordingState.OFF, CLOSED_REMOVED)

    def status(self) -> RecordingStatus:
        return self._status

    # -- packets --------------------------------------------------------------------------
    def _packet(self, packet: Packet) -> None:
        if not self._mine():
            self._lost()  # (once: then nothing is open, nothing is held)
            return
        segment = self._open
        continued_at: float | None = None  # where a segment rolled over at this packet ends
        if segment is not None:
            if packet.info is not segment.info:
                reason = self._reconnect_reason(segment)
                self._close(CLOSED_RECONNECT)
                self._begin_gap(self._covered_until, reason, write=False)
            elif packet.seq != segment.last_seq + 1:
                self._close(CLOSED_FELL_BEHIND)
                self._begin_gap(self._covered_until, GAP_FELL_BEHIND, write=True)
                log.warning("recording %s/%s fell behind", self.camera_id, self.stream_name)
            else:
                received_s = packet.received_at - segment.first_received
                # Looked at only where a segment may end (per packet it would cost more
                # than the rest of the recorder): at a keyframe, or at the index's bound
                # for a camera that sends none. By media time, which a burst of late
                # packets does not shorten, or by arrival if that says more.
                if packet.keyframe or received_s >= MAX_SEGMENT_S:
                    age_s = max(received_s, segment.writer.placed_s or 0.0)
                    if packet.keyframe and segment.resync is not None:
                        self._close(CLOSED_CLOCK)  # the next is dated by arrival
                    elif (
                        packet.keyframe
                        and age_s >= self._settings.segment_s
                        and not self._index_away()
                    ) or age_s >= MAX_SEGMENT_S:
                        self._close(CLOSED_ROLLOVER)
                        continued_at = self._last_end
            segment = self._open
        if segment is None:
            if self._held:
                if not self._hold(packet):
                    self._packet(packet)  # the held ones are written: this one as any other
                return
            if packet.keyframe and self._may_start(packet):
                if continued_at is None and packet.info is not self._last_info:
                    self._held = [packet]  # a new connection: date it first (_hold)
                else:
                    self._start(packet, continued_at)
            return
        try:
            segment.writer.add(packet)
        except Exception as error:  # a disk error, or a packet the muxer refuses
            self._failed(error)
            return
        segment.last_seq = packet.seq
        segment.last_received = packet.received_at
        self._check_clock(segment)

    @staticmethod
    def _ahead_s(segment: _OpenSegment) -> float:
        """How far the segment's timeline puts its last packet after that packet's arrival
        (negative: before it, as a packet is never early; 0 while none has a time)."""
        placed = segment.writer.placed_s
        if placed is None:
            return 0.0
        return segment.start_mono + placed - segment.last_received

    def _check_clock(self, segment: _OpenSegment) -> None:
        """After each packet written (a few attribute reads, next to a mux call): mark the
        segment for a cut when its timeline strays from arrival; say so once."""
        writer = segment.writer
        if writer.clock_jumps != segment.jumps_seen:
            segment.jumps_seen = writer.clock_jumps
            self._log_clock("the camera's clock jumped; the recording follows arrival")
        if segment.resync is not None:
            return
        ahead = self._ahead_s(segment)
        if ahead > CLOCK_AHEAD_S:
            segment.resync = f"the camera's clock ran {ahead:.1f} s ahead of arrival"
        elif ahead < -CLOCK_LATE_S:
            segment.resync = f"the camera's packets arrived {-ahead:.1f} s late"
        else:
            return
        self._log_clock(f"{segment.resync}; the next segment is dated by arrival")

    def _log_clock(self, text: str) -> None:
        now = time.monotonic()
        if now - self._clock_logged_at >= CLOCK_LOG_EVERY_S:
            self._clock_logged_at = now
            log.warning("recording %s/%s: %s", self.camera_id, self.stream_name, text)

    def _reconnect_reason(self, segment: _OpenSegment) -> str:
        """Why the connection changed: the camera's error since the segment began, if any."""
        health = self._stream.health
        at = health.last_error_at
        if health.last_error and at is not None and at >= segment.start_at:
            return health.last_error
        return CLOSED_RECONNECT

    def _hold(self, packet: Packet) -> bool:
        """Hold a new connection's first packets until their arrival times date it: the
        first ones come in a burst (FFmpeg's probe holds about a second of them), and a
        packet arrives late, never early, so the earliest arrival minus media time is
        when media time 0 was live. False: ``packet`` was not held (the held ones are
        written now and it is the caller's)."""
        held = self._held
        if packet.info is held[0].info and packet.seq == held[-1].seq + 1:
            held.append(packet)
            if packet.received_at - held[0].received_at < SETTLE_S:
                return True
            self._release_held()
            return True
        self._release_held()
        return False

    def _release_held(self) -> None:
        """Start the segment with the held packets, dated by the earliest of them."""
        held, self._held = self._held, []
        if not held:
            return
        first = held[0]
        anchored_at = wall_time(first.received_at)
        # By decode time, as the writer's timeline (media time 0 is the first dts, counted
        # back): a pts runs ahead of it by the B-frame reorder delay.
        timestamps = [p.dts for p in held]
        if all(t is None for t in timestamps):
            timestamps = [p.pts for p in held]
        known = [(i, t) for i, t in enumerate(timestamps) if t is not None]
        known = known[: _before_clock_jump(held, known)]
        if known:
            info = first.info
            step = 1 / (info.average_fps or ASSUMED_FPS) / info.time_base
            zero = known[0][1] - round(known[0][0] * step)  # the first has none, maybe
            tick_s = float(info.time_base)
            anchored_at = min(
                anchored_at,
                *(wall_time(held[i].received_at) - (t - zero) * tick_s for i, t in known),
            )
            # A probe holds about a second: a clock that runs fast would date it earlier.
            anchored_at = max(anchored_at, wall_time(first.received_at) - SETTLE_S)
        self._start(first, anchored_at=anchored_at)
        for packet in held[1:]:
            if self._open is None:
                return  # the start failed (disk): the rest waits for the retry
            self._packet(packet)

    def _may_start(self, packet: Packet) -> bool:
        if time.monotonic() < self._retry_at:
            return False
        health = self._stream.health
        # A packet left over from before a silence is not the camera delivering again; one
        # received before the camera failed is footage like any other.
        return health.state not in _FAILING or wall_time(packet.received_at) < health.state_since

    def _start(
        self, first: Packet, continued_at: float | None = None, anchored_at: float | None = None
    ) -> None:
        """A new segment from keyframe ``first``. ``continued_at``: where the segment it
        follows on the same connection ended: its start, so the two touch exactly, unless
        the keyframe arrived more than RESYNC_S from it.
        ``anchored_at``: a new connection's start as its first packets date it. Neither
        moves it later than the keyframe's arrival or earlier than the last end."""
        settings = self._settings
        if not self._holds(self.camera_id):
            return  # let go (LETTING_GO_S): its next segment is the next holder's
        try:
            free = shutil.disk_usage(self._root).free
        except OSError as error:
            self._trouble(*write_failure(error), error)
            return
        if free < settings.min_free_bytes:
            self._space_low()
            self._trouble(
                RecordingState.DISK_FULL,
                GAP_DISK_FULL,
                None,
                detail=f"{free} bytes free on the recordings file system, below "
                f"min_free_bytes ({settings.min_free_bytes})",
            )
            return
        info = first.info
        arrived_at = wall_time(first.received_at)
        start_at = arrived_at
        if continued_at is not None and abs(arrived_at - continued_at) <= RESYNC_S:
            start_at = continued_at
        elif anchored_at is not None:
            start_at = min(start_at, anchored_at)
        if self._last_end is not None:
            # Never before the previous segment's end: a connection's first packets come
            # in a burst (FFmpeg's probe holds them), which dates its segment late.
            start_at = max(start_at, self._last_end)
            if self._gap is None and start_at - self._last_end >= MIN_GAP_S:
                # Same connection, no packet lost, yet a hole: they came late (a hold-up).
                self._begin_gap(self._last_end, GAP_HELD_UP, write=False)
                late_s = start_at - self._last_end
                self._log_clock(f"the camera's packets arrived {late_s:.1f} s late; a gap")
        if not self._close_unclosed():
            return
        # The row first (its id names the file): a crash before the file exists leaves an
        # open row without a file, which the next start discards.
        try:
            segment_id = self._store.open_segment(
                self.camera_id, self.stream_name,
                segment_path(self.camera_id, self.stream_name, start_at, SEGMENT_ID_PLACEHOLDER),
                start_at, info.codec, info.width, info.height,
            )  # fmt: skip
        except LeaseLost as lost:
            # Cluster mode: the camera's lease ran out under us (its ingest is stopping);
            # its new owner records it. Said once, retried like a failed write.
            self._retry_at = time.monotonic() + RETRY_AFTER_ERROR_S
            if not self._lease_lost_logged:
                self._lease_lost_logged = True
                log.warning("recording %s not started: %s", self.camera_id, lost)
            return
        except SQLAlchemyError as error:
            self._database_down(error)
            return
        self._lease_lost_logged = False
        self._database_back()
        path = self._root / segment_path(self.camera_id, self.stream_name, start_at, segment_id)
        try:
            path.parent.mkdir(mode=SEGMENT_DIR_MODE, parents=True, exist_ok=True)
            writer = SegmentWriter(path, first, settings.fragment_s)
        except Exception as error:  # a disk error, or a stream the muxer refuses
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)  # an init segment cut short
            self._store.discard_segment(segment_id)
            self._trouble(*write_failure(error), error)
            return
        self._end_gap(start_at)
        self._open = _OpenSegment(
            segment_id, path, writer, info, start_at,
            first.received_at + (start_at - arrived_at), first.received_at, first.seq,
            first.received_at,
        )  # fmt: skip
        self._last_info = info
        self._set_status(RecordingState.RECORDING, self._note, start_at)

    # -- closing --------------------------------------------------------------------------
    def _close(self, reason: str) -> None:
        segment = self._open
        assert segment is not None
        if not self._mine():
            self._lost()
            return
        try:
            facts = segment.writer.close()
        except Exception as error:
            self._failed(error)
            return
        self._closed(segment, facts, reason)

    def _closed(self, segment: _OpenSegment, facts: SegmentFacts, reason: str) -> bool:
        """False: the row was refused (the camera was taken over; _lost said so)."""
        # Never in the future: no later than the last packet's arrival (+ its frame and the
        # reorder delay the duration holds), whatever the camera's clock said.
        end_at = segment.start_at + self._readable_s(segment, facts.duration_s)
        try:
            # Held: fenced by the lease. Let go (a hand-off, LETTING_GO_S): ours still.
            fenced = self._holds(self.camera_id)
            close_with_facts(self._store, segment.segment_id, end_at, facts, reason, fenced=fenced)
        except (LeaseLost, SegmentNotOpen) as refused:
            # Taken over meanwhile: the row (closed by its salvage, maybe) is not ours.
            self._lost(refused)
            return False
        except SQLAlchemyError as error:
            # The file is whole; its row waits (the next start closes it, fenced as now):
            # the writer is done with, so no packet touches it again.
            self._unclosed = (segment.segment_id, end_at, facts, reason)
            self._database_down(error)
        self._open = None
        self.open_ref = None
        self._covered_until = self._last_end = end_at
        return True

    def _failed(self, error: Exception) -> None:
        """A write failed: keep the segment's whole fragments, show why, retry later."""
        segment = self._open
        assert segment is not None
        if not self._mine():
            self._lost()  # neither cut nor removed: the file is the new owner's
            return
        state, reason = write_failure(error)
        if not isinstance(error, OSError):
            log.error("recording %s failed", self.camera_id, exc_info=error)
        facts: SegmentFacts | None = None
        with contextlib.suppress(Exception):
            facts = segment.writer.abort()
        if facts is not None and facts.frames:
            if not self._closed(segment, facts, reason):
                return
        else:
            try:
                self._store.discard_segment(segment.segment_id)
            except (LeaseLost, SegmentNotOpen) as refused:
                self._lost(refused)
                return
            except SQLAlchemyError as database:
                # The open row stays, with what the file holds: the next start reconciles
                # it (salvage or discard), as after a crash.
                self._open = None
                self.open_ref = None
                self._database_down(database)
                return
            with contextlib.suppress(OSError):  # after the row: a refused one keeps its file
                segment.path.unlink(missing_ok=True)
            self._open = None
            self.open_ref = None
        self._trouble(state, reason, error)

    def _trouble(
        self,
        state: RecordingState,
        reason: str,
        error: Exception | None,
        *,
        detail: str | None = None,
    ) -> None:
        """Recording cannot go on for now: a gap with ``reason``, retried later."""
        self._retry_at = time.monotonic() + RETRY_AFTER_ERROR_S
        self._begin_gap(self._covered_until, reason, write=True)
        text = detail or reason
        if state is not self._status.state or text != self._status.detail:
            log.warning(
                "recording %s/%s: %s%s", self.camera_id, self.stream_name, text,
                f" ({error.strerror})" if isinstance(error, OSError) and error.strerror else "",
            )  # fmt: skip
        self._set_status(state, f"{text}; retrying every {RETRY_AFTER_ERROR_S:.0f} s")

    # -- the camera's health ---------------------------------------------------------------
    def _watch_health(self) -> None:
        if not self._holds(self.camera_id) and not self._through_outage():
            self._elsewhere()
            return
        health = self._stream.health
        state = health.state
        failing = state in _FAILING or (
            state is StreamState.CONNECTING and health.failed_attempts > 0
        )
        if not failing:
            return
        reason = health.last_error or f"camera {state.value}"
        if state is StreamState.DISABLED:
            reason = "camera disabled"
        self._release_held()
        if self._open is not None:
            self._close(CLOSED_STOPPED_DELIVERING)
        self._begin_gap(self._covered_until, reason, write=True)
        if self._status.state not in (RecordingState.DISK_FULL, RecordingState.ERROR):
            self._set_status(RecordingState.WAITING, f"camera not delivering: {reason}")

    def _elsewhere(self) -> None:
        """Another node holds the camera (cluster mode) and records it: the segment open
        here closes (handed off) or is dropped (lease lost), a gap of ours ends, and none
        is written while it is there."""
        self._held = []  # a new connection's first packets: no segment starts now
        if self._open is not None:
            self._close(CLOSED_STOPPED_DELIVERING)
        if self._gap is not None:
            self._end_gap(time.time())
        # What follows is the other node's to account for: no gap of ours covers it later.
        self._covered_until = time.time()
        self._last_end = None
        if self._status.state is not RecordingState.WAITING or self._status.detail not in (
            ELSEWHERE, LEASE_LOST
        ):  # fmt: skip
            self._set_status(RecordingState.WAITING, ELSEWHERE)

    def _mine(self) -> bool:
        """Whether this node may still write, close or remove the camera's segment and
        rows: it holds the camera, did LETTING_GO_S ago, or is handing it off."""
        now = time.monotonic()
        if self._holds(self.camera_id):
            self._held_at = now
            return True
        return now - self._held_at < LETTING_GO_S or self._handing_off() or self._through_outage()

    def _through_outage(self) -> bool:
        """Past the lease's deadline yet still read here: the database is away for every
        node, so nobody can have claimed the camera. The open segment's file goes on (no
        row is written until the database answers and the lease is claimed again; the row's
        close is fenced then)."""
        return self._reads(self.camera_id)

    def _handing_off(self) -> bool:
        """holds() says no: whether this node let the camera go itself. A hand-off stops
        the camera's ingest, which says the camera is elsewhere, before its reader has
        ended and long before the lease is released, so no other node can have taken the
        segment over (a take-over salvages only a dead node's). A lost lease says so
        (LEASE_LOST of services/camera_ownership.py), or nothing yet: a paused process
        resumes before its lease watchdog."""
        health = self._stream.health
        return (
            health.state is StreamState.OFFLINE  # (the last error stays once it is over)
            and health.last_error_kind is ErrorKind.UNREACHABLE
            and health.last_error == HELD_ELSEWHERE
        )

    def _lost(self, refused: Exception | None = None) -> None:
        """The camera's lease went to another node: drop the writer without writing,
        cutting or closing anything; the open row and its file are the new owner's to
        reconcile. ``refused``: the database's refusal of a row, if that told us."""
        segment, self._open = self._open, None
        self.open_ref = None
        self._held = []
        self._gap = None  # a gap of ours not ended stays open: the new owner ends it
        self._covered_until = time.time()
        self._last_end = None
        self._last_info = None
        if segment is None and refused is None:
            return  # nothing was under way (a hand-off closed it): packets left over, say
        if segment is not None:
            segment.writer.drop()
        if not self._lease_lost_logged:
            self._lease_lost_logged = True
            log.warning(
                "recording %s/%s stopped here, its open segment left to the new owner: %s%s",
                self.camera_id, self.stream_name, LEASE_LOST, f" ({refused})" if refused else "",
            )  # fmt: skip
        self._set_status(RecordingState.WAITING, LEASE_LOST)

    # -- gaps -----------------------------------------------------------------------------
    def _begin_gap(self, start_at: float, reason: str, *, write: bool) -> None:
        gap = self._gap
        if gap is None:
            gap = self._gap = _Gap(start_at, reason)
        elif gap.gap_id is None:
            gap.reason = reason  # the later reason says more (a reconnect, then "refused")
        if write and gap.gap_id is None:
            gap.gap_id = self._add_gap(gap)

    def _end_gap(self, end_at: float) -> None:
        gap, self._gap = self._gap, None
        if gap is None:
            return
        end_at = max(end_at, gap.start_at)
        if gap.gap_id is None:
            if end_at - gap.start_at < MIN_GAP_S:
                return
            gap.gap_id = self._add_gap(gap)
            if gap.gap_id is None:
                return
        if not self._mine():
            self._lost()  # the new owner ends it
            return
        try:
            self._store.end_gap(gap.gap_id, end_at, fenced=self._holds(self.camera_id))
        except LeaseLost as refused:
            self._lost(refused)
        except SQLAlchemyError as error:
            self._database_down(error)  # the row stays open: the next start ends it

    def _add_gap(self, gap: _Gap) -> int | None:
        """The gap's row, as the segments' (fenced; None: the lease is gone, _lost)."""
        if not self._mine():
            self._lost()
            return None
        try:
            return self._store.add_gap(
                self.camera_id, self.stream_name, gap.start_at, gap.reason,
                fenced=self._holds(self.camera_id),
            )  # fmt: skip
        except LeaseLost as refused:
            self._lost(refused)
            return None
        except SQLAlchemyError as error:
            self._database_down(error)  # not written: a later change writes it
            return None

    # -- the database away ----------------------------------------------------------------
    def _close_unclosed(self) -> bool:
        """Close the row left open while the database was away; False: not yet (it is
        still away: nothing new starts before it)."""
        if self._unclosed is None:
            return True
        segment_id, end_at, facts, reason = self._unclosed
        try:
            close_with_facts(self._store, segment_id, end_at, facts, reason)
        except (LeaseLost, SegmentNotOpen) as refused:
            self._unclosed = None
            self._lost(refused)  # taken over meanwhile: the row is the new owner's
            return False
        except SQLAlchemyError as error:
            self._database_down(error)
            return False
        self._unclosed = None
        return True

    def _index_away(self) -> bool:
        """The segment's row cannot be closed now (the lease is being claimed again after
        an outage, or the database does not answer): the segment goes on past its length
        rather than end in a row nobody can write, and a hole until the database is back.
        Asked once a segment length, so the one query it may cost is nothing."""
        if not self._holds(self.camera_id):
            return True
        if self._store.answers():
            return False
        if not self._database_down_logged:
            self._database_down_logged = True
            log.warning(
                "recording %s/%s: %s; the open segment goes on meanwhile",
                self.camera_id, self.stream_name, DATABASE_DOWN,
            )  # fmt: skip
        return True

    def _database_down(self, error: SQLAlchemyError) -> None:
        """Said once per outage, not per packet; retried every RETRY_AFTER_ERROR_S."""
        self._retry_at = time.monotonic() + RETRY_AFTER_ERROR_S
        if not self._database_down_logged:
            self._database_down_logged = True
            log.warning(
                "recording %s/%s paused: %s (%s)",
                self.camera_id, self.stream_name, DATABASE_DOWN, type(error).__name__,
            )  # fmt: skip
        self._set_status(RecordingState.ERROR, DATABASE_DOWN)

    def _database_back(self) -> None:
        if self._database_down_logged:
            self._database_down_logged = False
            log.info("recording %s/%s: database answers again", self.camera_id, self.stream_name)

    def _readable_s(self, segment: _OpenSegment, duration_s: float) -> float:
        """The media time of the segment the index may show: its timeline, shortened by
        how far it runs ahead of the arrival of its last packet."""
        return max(0.0, duration_s - max(0.0, self._ahead_s(segment)))

    # -- what others read ------------------------------------------------------------------
    def _set_status(
        self, state: RecordingState, detail: str | None, segment_started_at: float | None = None
    ) -> None:
        old = self._status
        since = old.since if state is old.state else time.time()
        self._status = RecordingStatus(state, self.stream_name, detail, since, segment_started_at)

    def _publish_open_ref(self) -> None:
        segment = self._open
        if segment is None:
            return
        written = segment.writer.duration_s
        if written == segment.published_s or written <= 0:
            return  # nothing new, or no whole fragment yet
        segment.published_s = written
        facts = segment.writer.progress()
        if facts.frames:
            self.open_ref = SegmentRef(
                path=segment.path,
                start_at=segment.start_at,
                duration_s=self._readable_s(segment, facts.duration_s),
                keyframes=tuple(facts.keyframes),
                init_bytes=facts.init_bytes,
                codec=facts.codec,
            )
