"""Retention: remove the segments the policy and the disk budget no longer allow.

The plan is the index's (recordings/retention.py: past retain_days first, then the oldest
of all while over max_bytes or under min_free_bytes; never held, never open). This loop
carries it out: rows first, in one transaction that keeps the chains verifiable, THEN the
files. A crash between the two leaves files without rows, which the next start removes
(services/recording_reconcile.py); the other order would leave rows whose files are gone,
which verify would report as tampering.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from surveillance.config.models import RecordingConfig
from surveillance.recordings.policy import CameraRecordingPolicy
from surveillance.recordings.records import SegmentRecord
from surveillance.recordings.retention import plan_removals
from surveillance.recordings.store import RecordingStore

log = logging.getLogger(__name__)

RETENTION_INTERVAL_S = 30.0  # how often the plan is made when nothing asks sooner
# Why a segment was removed (the audit log's and the index's removal reason).
REMOVED_EXPIRED = "retention period over"
REMOVED_FOR_SPACE = "disk budget"

# Told of every removal, after the files are gone: (segments, reason). The node connects
# it to the audit log.
OnRemoved = Callable[[Sequence[SegmentRecord], str], None]


class Retention:
    def __init__(
        self,
        store: RecordingStore,
        root: Path,
        settings: RecordingConfig,
        policies: Mapping[str, CameraRecordingPolicy],
        on_removed: OnRemoved | None = None,
    ) -> None:
        self._store = store
        self._root = root
        self._settings = settings
        self._policies = policies
        self._on_removed = on_removed
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def run(self) -> None:
        """Forever: a pass every RETENTION_INTERVAL_S, or at once when woken."""
        self._loop = asyncio.get_running_loop()
        while True:
            try:
                await asyncio.to_thread(self.run_once)
            except Exception:  # a pass that failed is tried again at the next
                log.exception("recording retention pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), RETENTION_INTERVAL_S)
            self._wake.clear()

    def wake(self) -> None:
        """Run a pass now (free space is low). Any thread; returns at once."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(self._wake.set)

    def run_once(self, now: float | None = None) -> list[SegmentRecord]:
        """One pass (blocking: a worker thread's); the segments it removed."""
        now = time.time() if now is None else now
        settings = self._settings
        try:
            free = shutil.disk_usage(self._root).free
        except OSError:
            return []  # no recordings directory (yet): nothing to remove
        plan = plan_removals(
            self._store,
            now,
            self._policies,
            self._store.total_bytes(),
            settings.max_bytes,
            free,
            settings.min_free_bytes,
        )
        expired = [s for s in plan if self._expired(s, now)]
        for_space = [s for s in plan if not self._expired(s, now)]
        for reason, segments in ((REMOVED_EXPIRED, expired), (REMOVED_FOR_SPACE, for_space)):
            if segments:
                self._remove(segments, reason)
        return plan

    def _expired(self, segment: SegmentRecord, now: float) -> bool:
        policy = self._policies.get(segment.camera_id)
        end_at = segment.end_at if segment.end_at is not None else now
        return policy is not None and end_at <= now - policy.retain_s

    def _remove(self, planned: list[SegmentRecord], reason: str) -> None:
        # The store re-reads the holds in its transaction and keeps a segment a hold placed
        # since the plan covers: only the files of the rows it removed go.
        segments = self._store.remove_segments(planned, reason)
        if not segments:
            return
        for segment in segments:
            try:
                (self._root / segment.path).unlink(missing_ok=True)
            except OSError as error:  # the row is gone: the next start removes the file
                log.warning("cannot remove recording file %s: %s", segment.path, error.strerror)
        log.info(
            "recording retention removed %d segments (%d bytes): %s",
            len(segments), sum(s.bytes for s in segments), reason,
        )  # fmt: skip
        if self._on_removed is not None:
            self._on_removed(segments, reason)
