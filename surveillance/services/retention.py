"""Retention: remove the segments the policy and the disk budget no longer allow.

The plan is the index's (recordings/retention.py: past retain_days first, then the oldest
of all while over max_bytes or under min_free_bytes; never held, never open). This loop
carries it out: rows first, in one transaction that keeps the chains verifiable, THEN the
files. A crash between the two leaves files without rows, which the next start sets aside
(services/recording_reconcile.py); the other order would leave rows whose files are gone,
which verify would report as tampering.

Past the disk budget footage still inside its retention goes too (the oldest of all), so
recording never fills the disk: then a file of another program on the recordings file
system deletes recordings. That is said loudly: a WARNING, the figure in
``removed_within_retention_bytes`` (for metrics) and, per camera, in its recording status
(services/recorder.py).

Cluster mode: the recordings and their index are every node's, so ONE node runs a pass at a
time, the one that takes a PostgreSQL advisory lock for it (``exclusive``; the others skip
theirs). Not "each node prunes the cameras it holds": the disk budget (max_bytes,
min_free_bytes) is the shared store's, so every node would free the whole shortfall from
its own cameras (N times too much); footage of cameras nobody holds (a dead node's before
their take-over, cameras taken out of the configuration) would never go; and a camera
changing hands mid-pass could be planned by its old and new holder at once, whose removals
(remove_segments reads the rows without locking them) would remove the same segments twice.
One runner plans from the whole index as a single node does: never an open segment (the
one its owner writes), never footage under a hold. A closed file another node is playing
back may go as it can on one node (past its retention or the budget): an open file stays
readable after unlink on a local file system; over NFS the reader may get ESTALE.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from surveillance.config.models import RecordingConfig, RecordingMode
from surveillance.db.outage_log import OutageLog
from surveillance.recordings.policy import CameraRecordingPolicy
from surveillance.recordings.records import SegmentRecord
from surveillance.recordings.retention import plan_removals
from surveillance.recordings.store import RecordingStore

log = logging.getLogger(__name__)

RETENTION_INTERVAL_S = 30.0  # how often the plan is made when nothing asks sooner
# Why a segment was removed (the audit log's and the index's removal reason).
REMOVED_EXPIRED = "retention period over"
REMOVED_FOR_SPACE = "disk budget"
FILE_ALREADY_GONE = "its file was already gone (deleted outside the node)"

# Told of every removal, after the files are gone: (segments, reason). The node connects
# it to the audit log.
OnRemoved = Callable[[Sequence[SegmentRecord], str], None]


@dataclass(frozen=True)
class RemovedWithinRetention:
    """Footage of one camera removed by the disk budget before its retention was over."""

    bytes: int  # since the node started
    last_at: float  # epoch s of the last such removal
    why: str  # the budget that made room, in words

    def describe(self) -> str:
        at = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(self.last_at))
        return f"{self.bytes} bytes of footage inside its retention removed {self.why} (last {at})"


class Retention:
    def __init__(
        self,
        store: RecordingStore,
        root: Path,
        settings: RecordingConfig,
        policies: Mapping[str, CameraRecordingPolicy],
        on_removed: OnRemoved | None = None,
        exclusive: Callable[[], AbstractContextManager[bool]] | None = None,
    ) -> None:
        """``exclusive()``: cluster mode's turn (see the module's docstring): a context
        whose value says whether this node runs the pass."""
        self._store = store
        self._exclusive = exclusive
        self._root = root
        self._settings = settings
        self._policies = policies
        self._on_removed = on_removed
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        # Read by any thread; replaced, never mutated, by the pass that changes them.
        self.removed_within_retention_bytes = 0
        self.removed_within_retention: Mapping[str, RemovedWithinRetention] = {}

    async def run(self) -> None:
        """Forever: a pass every RETENTION_INTERVAL_S, or at once when woken."""
        self._loop = asyncio.get_running_loop()
        outage = OutageLog(log, "recording retention")
        while True:
            try:
                await asyncio.to_thread(self.run_once)
                outage.worked()
            except SQLAlchemyError as error:  # tried again at the next pass
                outage.failed(error)
            except Exception:  # a pass that failed is tried again at the next
                log.exception("recording retention pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), RETENTION_INTERVAL_S)
            self._wake.clear()

    def set_policies(self, policies: Mapping[str, CameraRecordingPolicy]) -> None:
        """The cameras' policies from now on (cameras came or went while the node runs); a
        camera left out is treated as one taken out of the configuration. Any thread: the
        mapping is replaced whole and never changed after."""
        self._policies = policies

    def wake(self) -> None:
        """Run a pass now (free space is low). Any thread; returns at once."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(self._wake.set)

    def run_once(self, now: float | None = None) -> list[SegmentRecord]:
        """One pass (blocking: a worker thread's); the segments it removed (none when
        another node runs the pass now)."""
        now = time.time() if now is None else now
        if self._exclusive is None:
            return self._pass(now)
        with self._exclusive() as ours:
            return self._pass(now) if ours else []

    def _pass(self, now: float) -> list[SegmentRecord]:
        settings = self._settings
        try:
            free = shutil.disk_usage(self._root).free
        except OSError:
            return []  # no recordings directory (yet): nothing to remove
        policies = self._with_unconfigured()
        plan = plan_removals(
            self._store,
            now,
            policies,
            self._store.total_bytes(),
            settings.max_bytes,
            free,
            settings.min_free_bytes,
        )
        expired = [s for s in plan if _expired(policies, s, now)]
        for_space = [s for s in plan if not _expired(policies, s, now)]
        if expired:
            self._remove(expired, REMOVED_EXPIRED)
        if for_space:
            if free < settings.min_free_bytes:
                why = (
                    f"to keep min_free_bytes ({settings.min_free_bytes}) free on the "
                    f"recordings file system ({free} bytes were free)"
                )
            else:
                why = f"to stay under max_bytes ({settings.max_bytes})"
            self._removed_early(self._remove(for_space, REMOVED_FOR_SPACE), why, now)
        return plan

    def _removed_early(self, segments: list[SegmentRecord], why: str, now: float) -> None:
        if not segments:
            return
        removed = dict(self.removed_within_retention)
        for segment in segments:
            before = removed.get(segment.camera_id)
            total = segment.bytes + (before.bytes if before else 0)
            removed[segment.camera_id] = RemovedWithinRetention(total, now, why)
        self.removed_within_retention = removed
        size = sum(s.bytes for s in segments)
        self.removed_within_retention_bytes += size
        log.warning(
            "recording retention removed %d segments (%d bytes) of footage still inside its "
            "retention, %s; cameras: %s. Another program's files on that file system "
            "delete recordings",
            len(segments), size, why, ", ".join(sorted({s.camera_id for s in segments})),
        )  # fmt: skip

    def _with_unconfigured(self) -> Mapping[str, CameraRecordingPolicy]:
        """The configured cameras' policies, and ``recording.default``'s retention for the
        footage of cameras taken out of the configuration: it is not kept for ever, and it
        goes when the default says, not only when space runs short."""
        policies = self._policies  # one mapping throughout the pass
        anchors, _ = self._store.chain_anchors()  # one row per camera stream
        gone = {a.camera_id for a in anchors} - policies.keys()
        if not gone:
            return policies
        default = self._settings.default
        kept = CameraRecordingPolicy(RecordingMode.OFF, default.stream, default.retain_days)
        return {**dict.fromkeys(gone, kept), **policies}

    def _remove(self, planned: list[SegmentRecord], reason: str) -> list[SegmentRecord]:
        """Removes what the store lets go; returns it."""
        # The store re-reads the holds in its transaction and keeps a segment a hold placed
        # since the plan covers: only the files of the rows it removed go.
        segments = self._store.remove_segments(planned, reason)
        if not segments:
            return []
        already_gone: list[SegmentRecord] = []
        for segment in segments:
            try:
                (self._root / segment.path).unlink()
            except FileNotFoundError:
                already_gone.append(segment)
            except OSError as error:  # the row is gone: the next start sets the file aside
                log.warning("cannot remove recording file %s: %s", segment.path, error.strerror)
        log.info(
            "recording retention removed %d segments (%d bytes): %s",
            len(segments), sum(s.bytes for s in segments), reason,
        )  # fmt: skip
        gone = {s.id for s in already_gone}
        if already_gone:
            # Deleted by someone outside the node: the removal must not hide that (verify
            # no longer sees the row), so the audit log and the log say it.
            log.warning(
                "recording retention found %d segment file(s) already gone (deleted outside "
                "the node): %s",
                len(already_gone), ", ".join(s.path for s in already_gone[:10]),
            )  # fmt: skip
        if self._on_removed is not None:
            removed = [s for s in segments if s.id not in gone]
            if removed:
                self._on_removed(removed, reason)
            if already_gone:
                self._on_removed(already_gone, f"{reason}; {FILE_ALREADY_GONE}")
        return segments


def _expired(
    policies: Mapping[str, CameraRecordingPolicy], segment: SegmentRecord, now: float
) -> bool:
    policy = policies.get(segment.camera_id)
    end_at = segment.end_at if segment.end_at is not None else now
    return policy is not None and end_at <= now - policy.retain_s
