"""The recorder: every recorded camera stream written to segment files, without decoding.

Each recorded stream gets a fan-out subscription like any viewer (no second connection to
the camera) with a deep queue (``QUEUE_PACKETS``), so a slow disk makes the recorder late,
not lossy. A few writer threads, not one per camera, drain the subscriptions: each wakes
every ``WRITE_INTERVAL_S``, takes every packet queued for each of its cameras and writes
them (services/camera_recorder.py). One wake-up per fifth of a second for many cameras
costs far less than a thread wake-up per packet, and fragments are a second long anyway;
the ingest thread only appends to a queue and is never slowed by a disk.

Retention runs on the event loop, its work in a worker thread (services/retention.py);
``start`` first reconciles the index with the files (services/recording_reconcile.py).

Cameras added to the catalog while the node runs get a policy like configured ones
(recordings/policy.py) and, when it says so, a recorder on the least busy writer thread; a
removed camera's recorder closes its segment in its writer thread and the camera's footage
stays, under ``recording.default``'s retention as for a camera taken out of the config.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import threading
import time
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from surveillance.catalog import Camera, Catalog, CatalogChange
from surveillance.config.models import (
    AppConfig,
    IngestMode,
    RecordingMode,
    RecordingPolicyConfig,
    RecordingStream,
)
from surveillance.errors import CameraNotFound
from surveillance.media.recording_read import SegmentRef
from surveillance.media.stream import Stream
from surveillance.recordings.policy import (
    CameraRecordingPolicy,
    platform_recordings,
    policies,
    policy_for,
)
from surveillance.recordings.records import SegmentRecord
from surveillance.recordings.store import RecordingStore
from surveillance.services.camera_recorder import CameraRecorder
from surveillance.services.ingest import IngestService
from surveillance.services.recording_reconcile import (
    Leftovers,
    leftovers,
    reconcile,
    reconcile_leftovers,
)
from surveillance.services.recording_state import RecordingState, RecordingStatus
from surveillance.services.retention import OnRemoved, Retention

__all__ = ["RecorderService", "RecordingState", "RecordingStatus"]

log = logging.getLogger(__name__)

QUEUE_PACKETS = 2000  # per subscription: over a minute of a 25 fps camera before a drop
WRITE_INTERVAL_S = 0.2  # how often a writer thread drains its cameras
CAMERAS_PER_THREAD = 64  # a writer thread per this many recorded streams...
MAX_WRITER_THREADS = 4  # ...up to this many
ROOT_MODE = 0o700  # footage is for the service's user alone, as the data directory
# A camera's status tells of footage the disk budget removed inside its retention for this
# long after the last such removal: long enough for an operator's next look.
REMOVED_SHOWN_S = 86_400.0


class _WriterThread:
    """Drains its cameras until stopped, then closes their segments. Cameras join and leave
    while it runs; a leaving camera's recorder is closed in this thread, which alone
    touches it."""

    def __init__(self, name: str, recorders: list[CameraRecorder]) -> None:
        # Replaced, never changed in place: the thread iterates the list it took.
        self.recorders = recorders
        self._leaving: list[CameraRecorder] = []
        self._leaving_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def add(self, recorder: CameraRecorder) -> None:
        self.recorders = [*self.recorders, recorder]

    def retire(self, recorder: CameraRecorder) -> None:
        """Stop pumping ``recorder`` and close it (in this thread, at its next round)."""
        self.recorders = [r for r in self.recorders if r is not recorder]
        with self._leaving_lock:
            self._leaving.append(recorder)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()

    def join(self, timeout_s: float | None = None) -> None:
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stopping.wait(WRITE_INTERVAL_S):
            # First: a camera's new recorder (after a change) is on this thread too, and
            # its first segment must not open before the old one's is closed.
            self._retire_leaving()
            for recorder in self.recorders:
                try:
                    recorder.pump()
                except Exception:  # one camera's failure must not stop the others
                    log.exception("recording %s failed", recorder.camera_id)
        self._retire_leaving()
        for recorder in self.recorders:
            try:
                recorder.finish()
            except Exception:
                log.exception("closing the recording of %s failed", recorder.camera_id)

    def _retire_leaving(self) -> None:
        with self._leaving_lock:
            leaving, self._leaving = self._leaving, []
        for recorder in leaving:
            try:
                recorder.retire()
            except Exception:
                log.exception("closing the recording of %s failed", recorder.camera_id)


class RecorderService:
    def __init__(
        self,
        catalog: Catalog,
        ingest: IngestService,
        store: RecordingStore,
        config: AppConfig,
        on_removed: OnRemoved | None = None,
    ) -> None:
        """``on_removed(segments, reason)``: told of every retention removal (any thread);
        the node connects it to the audit log."""
        self._catalog = catalog
        self._ingest = ingest
        self._store = store
        self._settings = config.recording
        self.root: Path = config.recording_root()
        # Cluster mode: other nodes write under the same root and index (the reconcile
        # at start leaves what they may be writing).
        self._shared = config.cluster.enabled
        self._platform_recordings = platform_recordings(config)
        # Replaced whole when cameras come or go (retention reads it from its thread).
        self.policies: dict[str, CameraRecordingPolicy] = policies(config)
        self.policies.update(
            (c.id, self._policy_of(c)) for c in catalog.cameras.values() if c.runtime
        )
        self._retention = Retention(
            store,
            self.root,
            self._settings,
            self.policies,
            on_removed,
            exclusive=store.retention_turn if self._shared else None,
        )
        # Replaced whole on changes too: the API reads it from other threads.
        self._recorders: dict[str, CameraRecorder] = {}
        self._streams: dict[str, Stream] = {}  # the stream each recorder follows
        self._threads: list[_WriterThread] = []
        self._retention_task: asyncio.Task[None] | None = None
        # Cluster mode: a dead node's leftovers of cameras taken over, closed one take-over
        # at a time (services/recording_reconcile.py).
        self._takeovers = ThreadPoolExecutor(1, thread_name_prefix="recordings-takeover")
        self._running = False
        catalog.on_change(self._catalog_changed)

    def _policy_of(self, camera: Camera) -> CameraRecordingPolicy:
        platform: RecordingPolicyConfig | None = self._platform_recordings.get(camera.platform_id)
        return policy_for(self._settings, camera, platform)

    # -- life cycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Reconcile the index with the files, then record every camera its policy says."""
        recorded = [camera for camera in self._catalog.cameras.values() if self._records(camera)]
        if recorded or self.root.is_dir():
            await asyncio.to_thread(self._prepare_root)
        for camera in recorded:
            self._recorders[camera.id] = self._recorder_for(camera)
        recorders = list(self._recorders.values())
        count = min(MAX_WRITER_THREADS, math.ceil(len(recorders) / CAMERAS_PER_THREAD))
        for index in range(count):
            thread = _WriterThread(f"recorder-{index}", recorders[index::count])
            thread.start()
            self._threads.append(thread)
        self._running = True
        self._retention_task = asyncio.create_task(self._retention.run(), name="retention")
        log.info("recorder started: %d camera streams into %s", len(recorders), self.root)

    def _prepare_root(self) -> None:
        """Blocking. A root that cannot be made or read is logged, not fatal: live viewing
        goes on and each camera's state says why it does not record."""
        try:
            self.root.mkdir(mode=ROOT_MODE, parents=True, exist_ok=True)
            holds = self._ingest.holds if self._shared else None
            report = reconcile(self._store, self.root, shared=self._shared, holds=holds)
        except OSError as error:
            log.error("recordings directory %s unusable: %s", self.root, error.strerror)
            return
        if report.recovered or report.discarded or report.set_aside:
            log.info("recordings reconciled: %s", report)

    def taken_over(self, camera_ids: Collection[str]) -> None:
        """Cluster mode: cameras just taken over from a node that is not live (the lease
        round's worker thread, before this node reads them). What that node left open of
        them is read now, so none of it is this node's, and closed in the background: the
        salvage reads whole files, and the round must go on renewing leases meanwhile."""
        left = leftovers(self._store, camera_ids)
        if not left.segments and not left.gaps:
            return
        with contextlib.suppress(RuntimeError):  # stopping: the next start reconciles them
            self._takeovers.submit(self._reconcile_taken, left)

    def _reconcile_taken(self, left: Leftovers) -> None:
        try:
            report = reconcile_leftovers(self._store, self.root, left)
        except Exception:  # left open until a start reconciles them
            log.exception("reconciling the recordings of cameras taken over failed")
            return
        log.info("recordings of cameras taken over reconciled: %s", report)

    def _records(self, camera: Camera) -> bool:
        policy = self.policies.get(camera.id)
        return camera.enabled and policy is not None and policy.mode is RecordingMode.CONTINUOUS

    def _recorder_for(self, camera: Camera) -> CameraRecorder:
        sub = self.policies[camera.id].stream is RecordingStream.SUB
        note = None
        if sub and not camera.has_sub_stream:
            sub, note = False, "no sub-stream: recording the main stream"
        # Another node's camera (cluster mode) is not connected here; the recorder, as the
        # stream's consumer, has it started once the camera's lease comes here.
        stream = (
            self._ingest.ensure_connected(camera.id, sub)
            if camera.mode is IngestMode.ON_DEMAND and self._ingest.holds(camera.id)
            else self._ingest.stream(camera.id, sub)
        )
        self._streams = {**self._streams, camera.id: stream}
        return CameraRecorder(
            camera.id,
            RecordingStream.SUB.value if sub else RecordingStream.MAIN.value,
            stream,
            stream.subscribe(max_packets=QUEUE_PACKETS),
            self._store,
            self.root,
            self._settings,
            note=note,
            space_low=self._retention.wake,
            holds=self._ingest.holds,
            reads=self._ingest.reads,
        )

    async def stop(self) -> None:
        """Close every open segment (reason "shutdown"); before the ingest stops."""
        if self._retention_task is not None:
            self._retention_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retention_task
        self._running = False
        await asyncio.to_thread(self._takeovers.shutdown, True, cancel_futures=True)
        for thread in self._threads:
            thread.stop()
        for thread in self._threads:
            await asyncio.to_thread(thread.join)
        self._threads.clear()

    # -- cameras that come and go ---------------------------------------------------------
    def _catalog_changed(self, change: CatalogChange) -> None:
        """The catalog's listener (event loop thread, after the ingest's): policies for the
        cameras that came, none for those that went; recorders started and retired."""
        policies = dict(self.policies)
        for camera in change.removed:
            policies.pop(camera.id, None)
        for camera in change.added + change.updated:
            policies[camera.id] = self._policy_of(camera)
        before, self.policies = self.policies, policies
        self._retention.set_policies(policies)
        if not self._running:
            return  # start() records what the catalog and policies then say
        for camera in change.removed:
            self._stop_recording(camera.id)
        for camera in change.added + change.updated:
            thread = None
            if self._recording_changed(camera, before.get(camera.id)):
                thread = self._stop_recording(camera.id)
            if camera.id not in self._recorders and self._records(camera):
                self._start_recording(camera, thread)

    def _recording_changed(self, camera: Camera, before: CameraRecordingPolicy | None) -> bool:
        """Whether an updated camera's recorder must go: its policy changed, or the ingest
        gave it a new stream (a new URL)."""
        if camera.id not in self._recorders:
            return False
        stream = self._streams.get(camera.id)
        sub = stream is not None and stream.key.endswith("/sub")
        try:
            current = self._ingest.stream(camera.id, sub)
        except CameraNotFound:
            return True
        return before != self.policies.get(camera.id) or current is not stream

    def _start_recording(self, camera: Camera, thread: _WriterThread | None) -> None:
        """On ``thread`` if given (the one that retires the camera's previous recorder)."""
        try:
            self.root.mkdir(mode=ROOT_MODE, parents=True, exist_ok=True)  # no camera recorded yet
        except OSError as error:
            log.error("recordings directory %s unusable: %s", self.root, error.strerror)
            return
        recorder = self._recorder_for(camera)
        self._recorders = {**self._recorders, camera.id: recorder}
        if thread is not None:
            thread.add(recorder)
        elif len(self._threads) < MAX_WRITER_THREADS and (
            not self._threads or all(len(t.recorders) >= CAMERAS_PER_THREAD for t in self._threads)
        ):
            thread = _WriterThread(f"recorder-{len(self._threads)}", [recorder])
            thread.start()
            self._threads.append(thread)
        else:
            min(self._threads, key=lambda t: len(t.recorders)).add(recorder)
        log.info("recording %s (%s stream)", camera.id, recorder.stream_name)

    def _stop_recording(self, camera_id: str) -> _WriterThread | None:
        """The writer thread that retires the camera's recorder, if it had one."""
        recorder = self._recorders.get(camera_id)
        if recorder is None:
            return None
        self._recorders = {i: r for i, r in self._recorders.items() if i != camera_id}
        self._streams = {i: s for i, s in self._streams.items() if i != camera_id}
        log.info("recording of %s stopped: the camera was removed or changed", camera_id)
        for thread in self._threads:
            if recorder in thread.recorders:
                thread.retire(recorder)
                return thread
        return None

    # -- what the API reads ---------------------------------------------------------------
    def status(self, camera_id: str) -> RecordingStatus:
        recorder = self._recorders.get(camera_id)
        if recorder is not None:
            return self._with_removals(camera_id, recorder.status())
        camera = self._catalog.camera(camera_id)
        if camera is None:
            raise CameraNotFound(camera_id)
        detail = "camera disabled" if not camera.enabled else "recording is off for this camera"
        off = RecordingStatus(RecordingState.OFF, None, detail, time.time(), None)
        return self._with_removals(camera_id, off)

    def _with_removals(self, camera_id: str, status: RecordingStatus) -> RecordingStatus:
        """The status, telling of footage the disk budget removed inside its retention."""
        removed = self._retention.removed_within_retention.get(camera_id)
        if removed is None or time.time() - removed.last_at > REMOVED_SHOWN_S:
            return status
        said = removed.describe()
        detail = f"{status.detail}; {said}" if status.detail else said
        return dataclasses.replace(status, detail=detail)

    @property
    def removed_within_retention_bytes(self) -> int:
        """Bytes of footage the disk budget removed inside its retention since the start:
        for the metrics (a counter)."""
        return self._retention.removed_within_retention_bytes

    def refs(
        self, camera_id: str, stream: str | None, start_at: float, end_at: float
    ) -> list[SegmentRef]:
        """The footage of ``camera_id`` overlapping [start_at, end_at), by start: closed
        segments from the index, then the open segment's whole fragments so far. Blocking
        (database): call it from a worker thread."""
        recorder = self._recorders.get(camera_id)
        # Read before the index: a segment closing in between is then in both (and taken
        # once), never in neither.
        open_ref = None
        if recorder is not None and stream in (None, recorder.stream_name):
            open_ref = recorder.open_ref
        refs = [self._ref(s) for s in self._store.segments(camera_id, stream, start_at, end_at)]
        if (
            open_ref is not None
            and open_ref.start_at < end_at
            and open_ref.start_at + open_ref.duration_s > start_at
            and all(ref.path != open_ref.path for ref in refs)
        ):
            refs.append(open_ref)
        return refs

    def _ref(self, segment: SegmentRecord) -> SegmentRef:
        assert segment.end_at is not None  # the store lists closed segments only
        return SegmentRef(
            path=self.root / segment.path,
            start_at=segment.start_at,
            duration_s=segment.end_at - segment.start_at,
            keyframes=segment.keyframes,
            init_bytes=segment.init_bytes,
            codec=segment.codec,
        )

    def run_retention(self, now: float | None = None) -> list[SegmentRecord]:
        """One retention pass now (blocking); for the command line and tests."""
        return self._retention.run_once(now)
