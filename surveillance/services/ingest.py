"""The ingest service: one worker per camera stream, their health, and the platform roll-up.

A monitor task on the event loop derives rates once a second, marks streams stalled when
packets stop while the socket stays open, ends a session that stays silent for
``read_timeout_s`` (the worker then reconnects), and parks on-demand streams nobody uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from surveillance.catalog import Camera, Catalog
from surveillance.config.models import IngestConfig, IngestMode
from surveillance.config.networks import AllowedHosts
from surveillance.errors import CameraNotFound, CameraUnavailable, NoSubStream
from surveillance.media.backoff import Backoff
from surveillance.media.connections import SocketIndex
from surveillance.media.health import ErrorKind, HealthSnapshot, StreamState
from surveillance.media.preflight import RedirectPolicy
from surveillance.media.source import SourceOptions
from surveillance.media.stream import Stream
from surveillance.media.worker import IngestWorker

log = logging.getLogger(__name__)

MONITOR_INTERVAL_S = 0.5  # how often stall and idle checks run
RATE_INTERVAL_S = 1.0  # window of the fps and bitrate figures
SHUTDOWN_JOIN_S = 3.0  # how long stop() waits for worker threads before leaving them
# How long a request waits for a stream's first keyframe: an on-demand camera connecting,
# or a camera between its connection and its first keyframe. Failed cameras answer at once.
FIRST_PICTURE_WAIT_S = 8.0

# Worst first, for the "worst cameras" of a platform.
_SEVERITY = {
    StreamState.OFFLINE: 0,
    StreamState.STALLED: 1,
    StreamState.CONNECTING: 2,
    StreamState.ONLINE: 3,
    StreamState.IDLE: 4,
    StreamState.DISABLED: 5,
}


@dataclass
class _StreamSlot:
    stream: Stream
    worker: IngestWorker
    camera: Camera
    sub: bool
    idle_since: float | None = None  # monotonic; on-demand streams only


@dataclass(frozen=True)
class CameraHealth:
    camera: Camera
    state: StreamState
    main: HealthSnapshot
    sub: HealthSnapshot | None


@dataclass(frozen=True)
class PlatformHealth:
    platform_id: str
    name: str
    total: int
    online: int
    by_state: dict[str, int]
    online_ratio: float | None  # of the cameras that should be online
    worst: list[CameraHealth]


class IngestService:
    def __init__(
        self, catalog: Catalog, settings: IngestConfig, redact: Callable[[str], str]
    ) -> None:
        self.catalog = catalog
        self.settings = settings
        self._redact = redact
        self._redirects = RedirectPolicy(
            settings.allow_redirects, AllowedHosts(settings.allowed_networks).permits
        )
        self._slots: dict[tuple[str, bool], _StreamSlot] = {}
        self._monitor_task: asyncio.Task[None] | None = None
        for camera in catalog.cameras.values():
            self._slots[(camera.id, False)] = self._make_slot(camera, sub=False)
            if camera.has_sub_stream:
                self._slots[(camera.id, True)] = self._make_slot(camera, sub=True)

    def _make_slot(self, camera: Camera, *, sub: bool) -> _StreamSlot:
        s = self.settings
        stream = Stream(
            f"{camera.id}/sub" if sub else camera.id,
            ring_seconds=s.ring_seconds,
            queue_packets=s.subscriber_queue_packets,
            stall_after_s=s.stall_after_s,
        )
        options = SourceOptions(camera.transport.value, s.connect_timeout_s, s.read_timeout_s)
        worker = IngestWorker(
            stream,
            camera.stream_url(sub),
            options,
            Backoff(s.backoff_initial_s, s.backoff_max_s),
            self._redact,
            self._redirects,
        )
        if not camera.enabled:
            stream.health.set_state(StreamState.DISABLED)
        elif camera.mode is IngestMode.ON_DEMAND:
            stream.health.set_state(StreamState.IDLE)
        return _StreamSlot(stream, worker, camera, sub)

    # -- life cycle -----------------------------------------------------------------------
    async def start(self) -> None:
        for slot in self._slots.values():
            if slot.camera.enabled and slot.camera.mode is IngestMode.ALWAYS_ON:
                slot.worker.start()
        self._monitor_task = asyncio.create_task(self._monitor(), name="ingest-monitor")
        log.info("ingest started: %d streams", len(self._slots))

    async def stop(self) -> None:
        if self._monitor_task:
            self._monitor_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor_task
        for slot in self._slots.values():
            slot.worker.stop()
        deadline = time.monotonic() + SHUTDOWN_JOIN_S
        for slot in self._slots.values():
            remaining = max(0.0, deadline - time.monotonic())
            await asyncio.to_thread(slot.worker.join, remaining)

    # -- access ---------------------------------------------------------------------------
    def stream(self, camera_id: str, sub: bool = False) -> Stream:
        slot = self._slots.get((camera_id, sub))
        if slot is None:
            if camera_id not in self.catalog.cameras:
                raise CameraNotFound(camera_id)
            raise NoSubStream(camera_id)
        return slot.stream

    def streams(self) -> list[tuple[str, Stream]]:
        """Every camera stream, main and sub, with its camera's id."""
        return [(slot.camera.id, slot.stream) for slot in self._slots.values()]

    def ensure_connected(self, camera_id: str, sub: bool = False) -> Stream:
        """Start an on-demand stream (no-op for always-on ones); returns the stream.

        The stream stays up while it has consumers, and ``on_demand_idle_s`` after that.
        """
        slot = self._slots.get((camera_id, sub))
        if slot is None:
            self.stream(camera_id, sub)  # raises the right error
            raise AssertionError("unreachable")
        if slot.camera.enabled and slot.camera.mode is IngestMode.ON_DEMAND:
            slot.idle_since = time.monotonic()
            if not slot.worker.running:
                log.info("on-demand stream %s connecting", slot.stream.key)
                slot.worker.start()
        return slot.stream

    async def ready_stream(
        self, camera_id: str, sub: bool = False, *, timeout_s: float = FIRST_PICTURE_WAIT_S
    ) -> Stream:
        """The stream, connected (an on-demand camera starts now), with a keyframe to start
        from. Raises CameraNotFound, or CameraUnavailable with the camera's state and reason:
        at once for a camera that is offline, stalled or disabled, after ``timeout_s`` for one
        that does not start."""
        stream = self.ensure_connected(camera_id, sub)
        if not await stream.wait_ready(timeout_s):
            health = stream.health
            raise CameraUnavailable(camera_id, health.state.value, health.last_error)
        return stream

    def camera_health(self, camera_id: str) -> CameraHealth:
        camera = self.catalog.camera(camera_id)
        if camera is None:
            raise CameraNotFound(camera_id)
        main = self._slots[(camera_id, False)].stream.health_snapshot()
        sub_slot = self._slots.get((camera_id, True))
        sub = sub_slot.stream.health_snapshot() if sub_slot else None
        return CameraHealth(camera, main.state, main, sub)

    def all_health(self) -> list[CameraHealth]:
        return [self.camera_health(camera_id) for camera_id in self.catalog.cameras]

    def platform_health(
        self, worst_count: int = 5, visible: Callable[[Camera], bool] | None = None
    ) -> list[PlatformHealth]:
        """Per-platform roll-up; with ``visible``, of those cameras only (and only the
        platforms that have any)."""
        by_platform: dict[str, list[CameraHealth]] = (
            {p: [] for p in self.catalog.platforms} if visible is None else {}
        )
        for health in self.all_health():
            if visible is not None and not visible(health.camera):
                continue
            by_platform.setdefault(health.camera.platform_id, []).append(health)
        result = []
        for platform_id, cameras in by_platform.items():
            counts: dict[str, int] = {state.value: 0 for state in StreamState}
            for health in cameras:
                counts[health.state.value] += 1
            expected = len(cameras) - counts["disabled"] - counts["idle"]
            online = counts["online"]
            troubled = [
                h
                for h in cameras
                if h.state not in (StreamState.ONLINE, StreamState.IDLE, StreamState.DISABLED)
            ]
            troubled.sort(key=lambda h: (_SEVERITY[h.state], h.main.state_since))
            platform = self.catalog.platforms.get(platform_id)
            result.append(
                PlatformHealth(
                    platform_id=platform_id,
                    name=platform.name if platform else platform_id,
                    total=len(cameras),
                    online=online,
                    by_state=counts,
                    online_ratio=(online / expected) if expected else None,
                    worst=troubled[:worst_count],
                )
            )
        return result

    # -- monitor --------------------------------------------------------------------------
    async def _monitor(self) -> None:
        last_rates = 0.0
        while True:
            await asyncio.sleep(MONITOR_INTERVAL_S)
            now = time.monotonic()
            update_rates = now - last_rates >= RATE_INTERVAL_S
            if update_rates:
                last_rates = now
            wall_now = time.time()
            sockets = SocketIndex()  # read from /proc only if a session is found hung
            for slot in self._slots.values():
                self._check(slot, now, update_rates, sockets)
                slot.stream.health.clear_warning_if_steady(wall_now)

    def _check(
        self, slot: _StreamSlot, now: float, update_rates: bool, sockets: SocketIndex
    ) -> None:
        health = slot.stream.health
        if update_rates:
            health.update_rates(now)
        age = health.last_packet_age(now)
        # The stream's own figure: stall_after_s, or a few of a slow camera's frame
        # intervals when those are longer (media/liveness.py), so a 1 fps camera under
        # stall_after_s 0.8 is not "stalled" between two of its frames.
        stall_after = slot.stream.silence_after_s(self.settings.stall_after_s)
        if health.state is StreamState.ONLINE and age is not None and age > stall_after:
            message = f"no packets for {age:.0f} s while the connection stays open"
            health.set_error(ErrorKind.STALLED, message, StreamState.STALLED)
            log.warning("stream %s stalled: %s", slot.stream.key, message)
        opened_at = health.session_opened_at
        if (
            health.state in (StreamState.CONNECTING, StreamState.OFFLINE)
            and opened_at is not None
            and now - opened_at > stall_after
            and (health.last_packet_at is None or health.last_packet_at < opened_at)
        ):
            # FFmpeg's socket timeout cannot end this wait: the server's RTCP reports and
            # keep-alive answers keep the socket busy. The stream shows as stalled, turns
            # online by itself when video flows, and is re-opened at read_timeout_s.
            message = "the RTSP session is open but the camera sends no video"
            health.set_error(ErrorKind.STALLED, message, StreamState.STALLED)
            log.warning("stream %s stalled: %s", slot.stream.key, message)
        slot.worker.end_if_hung(now, stall_after, sockets)
        if slot.camera.mode is IngestMode.ON_DEMAND and slot.camera.enabled:
            self._park_if_idle(slot, now)

    def _park_if_idle(self, slot: _StreamSlot, now: float) -> None:
        if slot.stream.consumers:
            slot.idle_since = now
            if not slot.worker.running:
                slot.worker.start()  # a consumer outlived a worker that had stopped
            return
        if (
            slot.worker.running
            and slot.idle_since is not None
            and now - slot.idle_since >= self.settings.on_demand_idle_s
        ):
            log.info("on-demand stream %s idle: disconnecting", slot.stream.key)
            slot.worker.stop()
            slot.stream.ring.clear()
            slot.stream.health.set_state(StreamState.IDLE)
            slot.idle_since = None
