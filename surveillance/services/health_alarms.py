"""Camera health into events: camera.offline and camera.stalled after a grace, and a storm of
them collapsed into one platform.offline event.

Fed by the same stream health listeners as the pages' health events
(services/health_events.py). A listener runs on an ingest thread and only hands the camera
to this service's one worker thread; a tick on the loop hands over the clock once a second.
Every decision and every write to the bus happens on that worker thread, in order, so the
state below needs no lock and an end is never overtaken by the raise before it.

* A camera down (offline or stalled) for ``offline_after_s`` / ``stalled_after_s`` raises
  its event, started when it went down; one back within the grace raises nothing (a
  flapping camera makes no burst of events). Back online ends the event.
* The camera's state is its main stream's; an on-demand camera whose main stream is parked
  while its sub-stream is read takes the sub-stream's. Disabled and idle (parked on-demand)
  cameras are never down.
* Storm: when ``storm_cameras`` cameras of one platform went down within
  ``storm_window_s`` (or, on a platform of fewer monitored cameras but at least two, all of
  them), one platform.offline event is raised, and every camera event of that platform
  raised while it lasts is folded under it (``parent_id``), those raised before it too.
  The platform event ends when the last of its cameras is back.
* Stopping: from ``stop()`` on nothing new is raised (what the stopping node does to its
  own streams is no camera failure, and the work queued behind thousands of cameras going
  down must not hold the shutdown); ends are still written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from surveillance.catalog import Camera
from surveillance.config.models import EventsConfig
from surveillance.errors import CameraNotFound
from surveillance.events.records import EventSpec, EventType, Severity
from surveillance.media.health import HealthSnapshot, StreamState
from surveillance.services.event_bus import EventBus
from surveillance.services.ingest import IngestService

log = logging.getLogger(__name__)

TICK_S = 1.0  # graces are checked this often: an event is raised at most this late
DOWN = {
    StreamState.OFFLINE: EventType.CAMERA_OFFLINE,
    StreamState.STALLED: EventType.CAMERA_STALLED,
}
NOT_MONITORED = (StreamState.DISABLED, StreamState.IDLE)


@dataclass
class _Down:
    type: EventType
    since: float  # wall clock: when the camera went down (kept from stalled to offline)
    reason: str | None
    raised: bool = False


@dataclass
class _Storm:
    event_id: int
    started_at: float
    children: set[str] = field(default_factory=set)  # cameras whose event is folded under it


def camera_key(event_type: EventType, camera_id: str) -> str:
    return f"{event_type.value}:{camera_id}"


def platform_key(platform_id: str) -> str:
    return f"{EventType.PLATFORM_OFFLINE.value}:{platform_id}"


class HealthAlarms:
    def __init__(self, ingest: IngestService, bus: EventBus, config: EventsConfig) -> None:
        self._ingest = ingest
        self._bus = bus
        self._config = config
        self._grace = {
            EventType.CAMERA_OFFLINE: config.offline_after_s,
            EventType.CAMERA_STALLED: config.stalled_after_s,
        }
        self._down: dict[str, _Down] = {}
        self._storms: dict[str, _Storm] = {}  # by platform id
        self._worker: ThreadPoolExecutor | None = None
        self._tick_task: asyncio.Task[None] | None = None
        self._stopping = False  # set on the loop, read by the worker thread: a plain flag
        # Every stream's, those of cameras added while the node runs too.
        ingest.add_health_listener(self._from_any_thread)

    async def start(self) -> None:
        """After the bus has started (it ends what a stopped node left active)."""
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="health-alarms")
        for camera_id in self._ingest.catalog.cameras:
            self._from_any_thread(camera_id)
        self._tick_task = asyncio.create_task(self._tick_forever(), name="health-alarms")

    async def stop(self) -> None:
        self._stopping = True
        if self._tick_task is not None:
            self._tick_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tick_task
        worker, self._worker = self._worker, None
        if worker is not None:
            await asyncio.to_thread(worker.shutdown, wait=True)

    def _from_any_thread(self, camera_id: str) -> None:
        """The stream's health listener: hands the camera over and returns at once."""
        worker = self._worker
        if worker is None:
            return
        with contextlib.suppress(RuntimeError):  # shut down in between
            worker.submit(self._guarded, self._changed, camera_id)

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            worker = self._worker
            if worker is not None:
                worker.submit(self._guarded, self._tick)

    @staticmethod
    def _guarded(step: Callable[..., None], *args: str) -> None:
        try:
            step(*args)
        except Exception:  # a failed write is logged; the next change or tick tries again
            log.exception("health alarms: a step failed")

    # -- the worker thread ----------------------------------------------------------------
    def _changed(self, camera_id: str) -> None:
        if not self._ingest.holds(camera_id):
            # Another node's camera (cluster mode): its owner raises its alarms; what this
            # node raised while it held the camera ends here.
            self._forget(camera_id)
            return
        camera = self._ingest.catalog.camera(camera_id)
        try:
            health = self._watched(camera_id)
        except CameraNotFound:
            camera = None
        if camera is None:
            self._forget(camera_id)
            return
        event_type = DOWN.get(health.state)
        down = self._down.get(camera_id)
        now = time.time()
        if event_type is None:
            if down is not None:
                del self._down[camera_id]
                if down.raised:
                    self._end(camera, down.type, now)
            return
        if down is None:
            down = self._down[camera_id] = _Down(event_type, health.state_since, health.last_error)
        elif down.type is not event_type:
            if down.raised:  # stalled, then the session ended: one condition after another
                self._end(camera, down.type, now)
            down.type, down.raised = event_type, False
        down.reason = health.last_error
        self._raise_if_due(camera, down, now)

    def _tick(self) -> None:
        now = time.time()
        for camera_id, down in list(self._down.items()):
            camera = self._ingest.catalog.camera(camera_id)
            if camera is None:
                self._forget(camera_id)
            else:
                self._raise_if_due(camera, down, now)

    def _forget(self, camera_id: str) -> None:
        """A camera removed from the catalog while the node runs: its down event ends (no
        one watches its condition any more), and it leaves its platform's storm."""
        down = self._down.pop(camera_id, None)
        if down is None:
            return
        now = time.time()
        if down.raised:
            self._bus.end_event(camera_key(down.type, camera_id), now)
        for platform_id, storm in list(self._storms.items()):
            if camera_id in storm.children:
                storm.children.discard(camera_id)
                if not storm.children:
                    del self._storms[platform_id]
                    self._bus.end_event(platform_key(platform_id), now)

    def _watched(self, camera_id: str) -> HealthSnapshot:
        """The health of the stream the node reads: the main one, else a sub-stream read
        while the on-demand main stream is parked."""
        health = self._ingest.camera_health(camera_id)  # CameraNotFound once removed
        sub = health.sub
        if health.main.state is StreamState.IDLE and sub is not None:
            return sub if sub.state is not StreamState.IDLE else health.main
        return health.main

    def _raise_if_due(self, camera: Camera, down: _Down, now: float) -> None:
        if self._stopping or down.raised or now < down.since + self._grace[down.type]:
            return
        storm = self._storm(camera.platform_id)
        self._bus.raise_event(
            self._camera_spec(camera, down), parent_id=storm.event_id if storm else None
        )
        down.raised = True
        if storm is not None:
            self._join(storm, camera)

    def _end(self, camera: Camera, event_type: EventType, now: float) -> None:
        self._bus.end_event(camera_key(event_type, camera.id), now)
        storm = self._storms.get(camera.platform_id)
        if storm is None or camera.id not in storm.children:
            return
        if camera.id in self._down:
            return  # still down, under another condition now
        storm.children.discard(camera.id)
        if not storm.children:
            del self._storms[camera.platform_id]
            self._bus.end_event(platform_key(camera.platform_id), now)

    # -- storms ---------------------------------------------------------------------------
    def _storm(self, platform_id: str) -> _Storm | None:
        """The platform's storm: the one under way, or one that starts now."""
        storm = self._storms.get(platform_id)
        if storm is not None:
            return storm
        cluster = self._storm_cluster(platform_id)
        if not cluster:
            return None
        started_at = min(self._down[c].since for c in cluster)
        record = self._bus.raise_event(self._platform_spec(platform_id, len(cluster), started_at))
        storm = self._storms[platform_id] = _Storm(record.id, started_at)
        log.warning(
            "platform %s: %d cameras down at once, one platform event", platform_id, len(cluster)
        )
        catalog = self._ingest.catalog
        for camera_id in cluster:
            down = self._down[camera_id]
            camera = catalog.camera(camera_id)
            if down.raised and camera is not None:  # raised before the storm: fold it under
                self._bus.raise_event(self._camera_spec(camera, down), parent_id=record.id)
                storm.children.add(camera_id)
        return storm

    def _storm_cluster(self, platform_id: str) -> list[str]:
        """The platform's cameras that went down within one storm window, if enough did."""
        cameras = [c for c in self._ingest.catalog.cameras.values() if c.platform_id == platform_id]
        monitored = [c for c in cameras if self._monitored(c.id)]
        needed = min(self._config.storm_cameras, len(monitored))
        if needed < 2:
            return []  # one camera down is that camera's event, not a platform's
        down = sorted((self._down[c.id].since, c.id) for c in monitored if c.id in self._down)
        window = self._config.storm_window_s
        for first in range(len(down) - needed + 1):
            last = first + needed - 1
            if down[last][0] - down[first][0] <= window:
                # Every camera down within the window from the first one of the cluster.
                start = down[first][0]
                return [c for since, c in down if start <= since <= start + window]
        return []

    def _monitored(self, camera_id: str) -> bool:
        try:
            return self._watched(camera_id).state not in NOT_MONITORED
        except CameraNotFound:  # removed a moment ago
            return False

    def _join(self, storm: _Storm, camera: Camera) -> None:
        storm.children.add(camera.id)
        # The platform event says how many cameras it folds, as it grows.
        self._bus.raise_event(
            self._platform_spec(camera.platform_id, len(storm.children), storm.started_at)
        )

    # -- what the events say --------------------------------------------------------------
    def _camera_spec(self, camera: Camera, down: _Down) -> EventSpec:
        what = "offline" if down.type is EventType.CAMERA_OFFLINE else "stalled"
        detail = {"reason": down.reason} if down.reason else {}
        return EventSpec(
            type=down.type,
            severity=Severity.WARNING,
            key=camera_key(down.type, camera.id),
            summary=f"{camera.name} {what}",
            camera_id=camera.id,
            platform_id=camera.platform_id,
            detail=detail,
            at=down.since,
        )

    def _platform_spec(self, platform_id: str, cameras: int, started_at: float) -> EventSpec:
        platform = self._ingest.catalog.platforms.get(platform_id)
        name = platform.name if platform else platform_id
        return EventSpec(
            type=EventType.PLATFORM_OFFLINE,
            severity=Severity.WARNING,
            key=platform_key(platform_id),
            summary=f"{name}: {cameras} cameras down",
            platform_id=platform_id,
            detail={"cameras": cameras},
            at=started_at,
        )
