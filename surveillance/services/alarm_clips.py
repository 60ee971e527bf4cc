"""An alarm keeps its clip: the footage around its moment, taken from the ring when it is raised.

The case made from an alarm attaches the clip from ``alarm_clip_pre_s`` before to
``alarm_clip_post_s`` after its start. On a camera that is not recorded that footage
lives only in the packet ring (``ingest.ring_seconds``, 10 s by default), and alarms are
often handled minutes later. So, as a listener on the event bus, this service starts
collecting the window the moment a new alarm is raised: what the ring still holds of its
start, then the live packets until its end (media/clip.py, the same collection the case's
clip uses), remuxed without re-encoding and put on the shelf (events/clips.py).

Nothing is kept when the recordings cover the window (the case takes those), and nothing
when the camera sent nothing in it; a failed write leaves nothing and logs why. Kept clips
go with their events: an hourly pass removes those whose event retention removed.

Cluster mode: only the node holding the camera keeps its alarms' clips, and one that lost
the camera's lease while collecting writes nothing (``ingest.holds`` is looked at again
right before the write). A clip has no row to fence; the check stands for the fence: holds()
turns False at the local deadline, a second before the database lets another node claim
the camera, so the new owner never reads while this node still writes.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

from surveillance.catalog import Catalog
from surveillance.config.models import EventsConfig
from surveillance.errors import SurveillanceError
from surveillance.events.clips import ClipShelf, KeptClipFacts
from surveillance.events.records import EventRecord, Severity
from surveillance.media.clip import ClipError, collect_window, remux_mp4
from surveillance.services.event_bus import EventBus
from surveillance.services.evidence import CLIP_GRACE_S, NOTE_THRESHOLD_S, wall_time
from surveillance.services.footage_times import Window
from surveillance.services.ingest import IngestService
from surveillance.services.recordings import RecordingsService

log = logging.getLogger(__name__)

CLIP_DIR = "event-clips"  # under AppConfig.shared_root() (the data dir on one node)
KEEPERS = 8  # alarms whose clips are being collected at once; more wait their turn
SWEEP_EVERY_S = 3600.0  # clips of events retention removed go this often
# The recordings count as covering a window when this little of it is missing: a GOP at
# its start, the fragment being written at its end.
RECORDED_SLACK_S = 3.0
MB = 1024 * 1024
SEEN_PRUNE_AT = 1000  # alarms remembered before those past their window are forgotten


class AlarmClips:
    def __init__(
        self,
        shelf: ClipShelf,
        bus: EventBus,
        ingest: IngestService,
        catalog: Catalog,
        recorded: RecordingsService | None,
        config: EventsConfig,
    ) -> None:
        self.shelf = shelf
        self._bus = bus
        self._ingest = ingest
        self._catalog = catalog
        self._recorded = recorded
        self._pre_s = config.alarm_clip_pre_s
        self._post_s = config.alarm_clip_post_s
        self._executor = ThreadPoolExecutor(KEEPERS, thread_name_prefix="alarm-clip")
        self._lock = threading.Lock()
        self._pending: dict[int, Future[None]] = {}  # event id -> its clip being kept
        # Alarms taken up (each is kept once), with their starts: those past their window
        # are let go of now and then (they cannot be taken up again anyway).
        self._seen: dict[int, float] = {}
        self._sweep_task: asyncio.Task[None] | None = None

    @staticmethod
    def max_bytes(config: EventsConfig) -> int:
        return int(config.alarm_clips_max_mb * MB)

    async def start(self) -> None:
        """Read the shelf, follow the bus (before anything raises alarms), sweep hourly."""
        await asyncio.to_thread(self.shelf.prepare)
        self._bus.add_listener(self._on_event)
        self._sweep_task = asyncio.create_task(self._sweep_forever(), name="alarm-clips-sweep")

    def stop(self) -> None:
        """Clips being collected end with the ingest's streams (it stops after this)."""
        if self._sweep_task is not None:
            self._sweep_task.cancel()
            self._sweep_task = None
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def kept(self, event_id: int) -> tuple[bytes, KeptClipFacts] | None:
        """The event's kept clip, waiting for it while it is being collected."""
        with self._lock:
            pending = self._pending.get(event_id)
        if pending is not None:
            await asyncio.wrap_future(pending)
        return await asyncio.to_thread(self.shelf.read, event_id)

    # -- the bus's listener (the writer's thread: quick) ----------------------------------
    def _on_event(self, record: EventRecord) -> None:
        if record.severity is not Severity.ALARM or record.camera_id is None or not record.active:
            return
        if time.time() - record.started_at > self._post_s:
            return  # its window is over already (an old event raised to alarm later)
        with self._lock:
            if record.id in self._seen:
                return
            if len(self._seen) >= SEEN_PRUNE_AT:
                over = time.time() - self._post_s
                self._seen = {i: at for i, at in self._seen.items() if at >= over}
            self._seen[record.id] = record.started_at
            try:
                future = self._executor.submit(self._keep, record)
            except RuntimeError:
                return  # the node is stopping
            self._pending[record.id] = future
        future.add_done_callback(lambda _: self._done(record.id))

    def _done(self, event_id: int) -> None:
        with self._lock:
            self._pending.pop(event_id, None)

    # -- keeping (a worker thread) --------------------------------------------------------
    def _keep(self, event: EventRecord) -> None:
        camera_id = event.camera_id
        assert camera_id is not None  # _on_event took only camera events
        try:
            self._collect_and_keep(event, camera_id)
        except (ClipError, SurveillanceError) as exc:
            log.info("event %d: no clip kept of camera %r: %s", event.id, camera_id, exc)
        except OSError as exc:
            log.error(
                "event %d: the clip of camera %r could not be written to %s: %s",
                event.id, camera_id, self.shelf.root, exc.strerror or exc,
            )  # fmt: skip
        except Exception:  # a bug here must not pass silently, nor reach the case
            log.exception("event %d: keeping the clip of camera %r failed", event.id, camera_id)

    def _collect_and_keep(self, event: EventRecord, camera_id: str) -> None:
        camera = self._catalog.camera(camera_id)
        if camera is None or not self._ingest.holds(camera_id):
            return  # (another node's camera: its owner keeps the clip)
        stream = self._ingest.stream(camera_id)  # CameraNotFound: a camera it does not read
        moment = time.monotonic() - (time.time() - event.started_at)
        start, end = moment - self._pre_s, moment + self._post_s
        window = collect_window(stream, start, end, CLIP_GRACE_S)
        asked = Window(event.started_at - self._pre_s, event.started_at + self._post_s)
        if self.recorded(camera_id, asked):
            log.info("event %d: the recordings hold its window, no clip kept", event.id)
            return
        data, facts = remux_mp4(window.packets)
        notes = []
        if window.late_start_s > NOTE_THRESHOLD_S:
            notes.append(f"starts {window.late_start_s:.1f} s after the requested start")
        if window.truncated_by_s > NOTE_THRESHOLD_S:
            notes.append(f"ends {window.truncated_by_s:.1f} s before the requested end")
        kept = KeptClipFacts(
            camera_id=camera_id,
            platform_id=camera.platform_id,
            captured_at=wall_time(window.packets[0].received_at).timestamp(),
            stream_time_s=facts.first_pts_s,
            codec=facts.codec,
            width=facts.width,
            height=facts.height,
            frames=facts.frames,
            duration_s=round(facts.duration_s, 3),
            note="; ".join(notes) or None,
        )
        if not self._ingest.holds(camera_id):
            # The lease went while the window was collected: the camera is another node's
            # now (or soon), and this node writes nothing more for it.
            log.info("event %d: camera %r lost its lease here, no clip kept", event.id, camera_id)
            return
        self.shelf.put(event.id, data, kept)

    def recorded(self, camera_id: str, asked: Window) -> bool:
        """Whether the recordings hold the whole window, but for a few seconds (blocking)."""
        if self._recorded is None:
            return False
        refs = self._recorded.refs(camera_id, asked.start, asked.end)
        seconds = sum(
            max(0.0, min(r.end_at, asked.end) - max(r.start_at, asked.start)) for r in refs
        )
        return seconds >= asked.end - asked.start - RECORDED_SLACK_S

    # -- retention --------------------------------------------------------------------------
    async def _sweep_forever(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.sweep)
            except Exception:  # retried next hour; never ends the loop
                log.exception("event clips: retention pass failed")
            await asyncio.sleep(SWEEP_EVERY_S)

    def sweep(self) -> list[int]:
        """Remove the kept clips whose events are gone (retention); the event ids."""
        ids = self.shelf.ids()
        existing = {record.id for record in self._bus.get_many(ids)} if ids else set()
        with self._lock:
            existing |= self._pending.keys()
        gone = self.shelf.keep_only(existing)
        if gone:
            log.info("event clips: %d clips of removed events removed", len(gone))
        return gone
