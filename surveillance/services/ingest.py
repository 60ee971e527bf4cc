"""The ingest service: one worker per camera stream, their health, and the platform roll-up.

A monitor task on the event loop derives rates once a second, marks streams stalled when
packets stop while the socket stays open, ends a session that stays silent for
``read_timeout_s`` (the worker then reconnects), and parks on-demand streams nobody uses.

Cameras come and go while the node runs (catalog.py): the service follows the catalog's
changes, making a stream for each camera added, stopping and dropping a removed one's, and
keeping an updated one's while its URL and mode stay. Its slots are copy-on-write like the
catalog, so other threads reading them see whole dicts. Which worker reads a camera depends
on its source kind (services/ingest_sources.py); a camera may be marked unreachable by
whoever knows (the GB registry: its platform is offline) and then answers at once.

In cluster mode (set_ownership) a camera another node holds has no worker here: it is never
connected, always-on or on demand, and its health is what its owner publishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from surveillance.catalog import Camera, Catalog, CatalogChange
from surveillance.config.models import IngestConfig, IngestMode
from surveillance.config.networks import AllowedHosts
from surveillance.errors import CameraElsewhere, CameraNotFound, CameraUnavailable, NoSubStream
from surveillance.media.backoff import Backoff
from surveillance.media.connections import SocketIndex
from surveillance.media.health import ErrorKind, HealthSnapshot, StreamState
from surveillance.media.preflight import RedirectPolicy
from surveillance.media.source import SourceOptions
from surveillance.media.stream import Stream
from surveillance.media.worker import IngestWorker
from surveillance.services.device_health import NO_DEVICE, DeviceHealth, DeviceHealthOf
from surveillance.services.ingest_sources import IngestSource, MissingSource, WorkerFactory
from surveillance.services.platform_rollup import CameraHealth, PlatformHealth, roll_up

__all__ = [
    "CameraHealth",
    "IngestService",
    "IngestSource",
    "PlatformHealth",
    "WorkerFactory",
]

log = logging.getLogger(__name__)

MONITOR_INTERVAL_S = 0.5  # how often stall and idle checks run
RATE_INTERVAL_S = 1.0  # window of the fps and bitrate figures
SHUTDOWN_JOIN_S = 3.0  # how long stop() waits for worker threads before leaving them
# How long a request waits for a stream's first keyframe: an on-demand camera connecting,
# or a camera between its connection and its first keyframe. Failed cameras answer at once.
FIRST_PICTURE_WAIT_S = 8.0
REMOVED = "camera removed from the catalog"  # a removed camera's old stream says so
ELSEWHERE = "held by another node, no status yet"  # until its owner's status arrives

Holds = Callable[[str], bool]  # whether this node holds the camera (its lease)
RemoteHealth = Callable[[str, bool], HealthSnapshot | None]  # (camera id, sub) -> owner's
Owner = Callable[[str], str | None]  # the node id holding the camera, when known


def _held_everywhere(camera_id: str) -> bool:
    return True  # one node: every camera is its own


def _no_remote(camera_id: str, sub: bool) -> HealthSnapshot | None:
    return None


def _unknown_owner(camera_id: str) -> str | None:
    return None


def _no_device(camera_id: str) -> DeviceHealth:
    return NO_DEVICE


@dataclass
class _StreamSlot:
    stream: Stream
    worker: IngestSource
    camera: Camera
    sub: bool
    idle_since: float | None = None  # monotonic; on-demand streams only


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
        self._sources: dict[str, WorkerFactory] = {"rtsp": self._rtsp_worker}
        # Replaced whole on every change (copy-on-write), never changed in place.
        self._slots: dict[tuple[str, bool], _StreamSlot] = {}
        self._unreachable: dict[str, str] = {}  # camera id -> why it cannot be reached now
        self._health_listeners: list[Callable[[str], None]] = []
        self._retired: list[IngestSource] = []  # workers of removed streams, joined at stop
        self._started = False
        self._monitor_task: asyncio.Task[None] | None = None
        self._holds: Holds = _held_everywhere  # whether the camera is READ here
        self._writes: Holds = _held_everywhere  # whether its writers may write (holds())
        self._remote: RemoteHealth = _no_remote
        self._owner: Owner = _unknown_owner
        self._device: DeviceHealthOf = _no_device
        for camera in catalog.cameras.values():
            self._slots.update(self._make_slots(camera))
        catalog.on_change(self._catalog_changed)

    def _make_slots(self, camera: Camera) -> dict[tuple[str, bool], _StreamSlot]:
        slots = {(camera.id, False): self._make_slot(camera, sub=False)}
        if camera.has_sub_stream:
            slots[(camera.id, True)] = self._make_slot(camera, sub=True)
        return slots

    def _make_slot(self, camera: Camera, *, sub: bool) -> _StreamSlot:
        s = self.settings
        stream = Stream(
            f"{camera.id}/sub" if sub else camera.id,
            ring_seconds=s.ring_seconds,
            queue_packets=s.subscriber_queue_packets,
            stall_after_s=s.stall_after_s,
        )
        factory = self._sources.get(camera.source_kind)
        worker = (
            factory(stream, camera, sub)
            if factory is not None
            else MissingSource(stream, camera.source_kind)
        )
        for listener in self._health_listeners:
            stream.add_health_listener(functools.partial(listener, camera.id))
        if not camera.enabled:
            stream.health.set_state(StreamState.DISABLED)
        elif isinstance(worker, MissingSource):
            worker.start()  # shows the stream offline with the reason from the start
        elif camera.id in self._unreachable:
            reason = self._unreachable[camera.id]
            stream.health.set_error(ErrorKind.UNREACHABLE, reason, StreamState.OFFLINE)
        elif not self._holds(camera.id):
            stream.health.set_error(ErrorKind.UNREACHABLE, ELSEWHERE, StreamState.OFFLINE)
        elif camera.mode is IngestMode.ON_DEMAND:
            stream.health.set_state(StreamState.IDLE)
        return _StreamSlot(stream, worker, camera, sub)

    def _rtsp_worker(self, stream: Stream, camera: Camera, sub: bool) -> IngestSource:
        return IngestWorker(
            stream,
            camera.stream_url(sub),
            self.source_options(camera),
            self.backoff(),
            self._redact,
            self._redirects,
        )

    # -- sources --------------------------------------------------------------------------
    def register_source(self, kind: str, factory: WorkerFactory) -> None:
        """Read cameras whose ``source_kind`` is ``kind`` with workers ``factory`` makes;
        before :meth:`start`. Streams made before, with no source, get one now."""
        if self._started:
            raise RuntimeError("register sources before the ingest starts")
        self._sources[kind] = factory
        slots = dict(self._slots)
        for key, slot in slots.items():
            if slot.camera.source_kind == kind and isinstance(slot.worker, MissingSource):
                slots[key] = self._make_slot(slot.camera, sub=slot.sub)
        self._slots = slots

    def source_options(self, camera: Camera) -> SourceOptions:
        """The connection settings of ``camera``'s workers (for a source factory)."""
        s = self.settings
        return SourceOptions(camera.transport.value, s.connect_timeout_s, s.read_timeout_s)

    def backoff(self) -> Backoff:
        """A new reconnection back-off as configured (one per worker)."""
        return Backoff(self.settings.backoff_initial_s, self.settings.backoff_max_s)

    def add_health_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(camera_id)`` after every health change of any stream, those of
        cameras added later too (see ``Stream.add_health_listener``: any thread, must
        return at once). Add it before the ingest starts."""
        self._health_listeners.append(listener)
        for slot in self._slots.values():
            slot.stream.add_health_listener(functools.partial(listener, slot.camera.id))

    # -- cluster ownership ----------------------------------------------------------------
    def set_ownership(
        self,
        holds: Holds,
        remote: RemoteHealth,
        owner: Owner | None = None,
        reads: Holds | None = None,
    ) -> None:
        """Cluster mode: ``holds(camera_id)`` says whether this node holds the camera (its
        writers may write: :meth:`holds`); ``reads(camera_id)`` (default ``holds``) whether
        it reads it (during a database outage a node may read a camera it can no longer
        write for). One it does not read is never connected here, and its health is
        ``remote(camera_id, sub)`` (its owner's published status), or offline "held by
        another node" until there is one. ``owner`` names the holder in the error a
        request for the camera gets. Before :meth:`start`; the holder calls
        :meth:`ownership_changed` when reads() changes."""
        if self._started:
            raise RuntimeError("set the ownership before the ingest starts")
        self._holds, self._writes, self._remote = reads or holds, holds, remote
        self._owner = owner or _unknown_owner
        for slot in self._slots.values():
            if not holds(slot.camera.id) and slot.camera.enabled:
                slot.stream.health.set_error(ErrorKind.UNREACHABLE, ELSEWHERE, StreamState.OFFLINE)

    def set_device_health(self, device: DeviceHealthOf) -> None:
        """``device(camera_id)``: what the camera's device says beside its streams (clock
        offset, ONVIF events; services/device_health.py), shown with its health."""
        self._device = device

    def holds(self, camera_id: str) -> bool:
        """Whether this node holds the camera's lease: what its writers (recordings, events,
        alarm clips) ask. It may be read here without (a database outage)."""
        return self._writes(camera_id)

    def reads(self, camera_id: str) -> bool:
        """Whether this node reads the camera: while it holds the lease, and on past its
        deadline through a database outage every node shares (nobody can claim it then)."""
        return self._holds(camera_id)

    async def ownership_changed(self, camera_ids: Collection[str], reason: str = ELSEWHERE) -> None:
        """Start or stop the cameras' workers to match holds() (event loop thread). A camera
        let go is stopped, its viewers ended, and its worker threads joined (bounded) before
        this returns: the caller releases its lease only then, so no two nodes read it.
        ``reason``: what a camera let go shows until its owner's status arrives."""
        stopped: list[_StreamSlot] = []
        for camera_id in camera_ids:
            found = (self._slots.get((camera_id, sub)) for sub in (False, True))
            held = self._holds(camera_id)
            for slot in (slot for slot in found if slot is not None):
                if held:
                    slot.stream.health.clear_warning(ErrorKind.UNREACHABLE)
                    if slot.stream.health.last_error_kind is ErrorKind.UNREACHABLE:
                        slot.stream.health.set_state(StreamState.IDLE)
                    if slot.camera.id not in self._unreachable:
                        # "held by another node", "lease lost": where the camera was, not
                        # an error of the camera's.
                        slot.stream.health.forget_error(ErrorKind.UNREACHABLE)
                        self._reachable_again(slot)
                    continue
                if isinstance(slot.worker, MissingSource) or not slot.camera.enabled:
                    continue
                slot.worker.stop()
                slot.idle_since = None
                slot.stream.ring.clear()
                slot.stream.health.set_error(ErrorKind.UNREACHABLE, reason, StreamState.OFFLINE)
                slot.stream.close_consumers()  # its viewers re-plan to the new owner
                stopped.append(slot)
            self.notify_health(camera_id)
        if not stopped:
            return
        workers = [slot.worker for slot in stopped]
        await asyncio.to_thread(_join_all, workers, time.monotonic() + SHUTDOWN_JOIN_S)
        for slot in stopped:
            # A worker may report its own failure as it ends: where the camera is stays
            # the reason shown (unless it came back here meanwhile).
            if not self._holds(slot.camera.id) and slot.stream.health.last_error != reason:
                slot.stream.health.set_error(ErrorKind.UNREACHABLE, reason, StreamState.OFFLINE)

    def reading(self, camera_id: str) -> bool:
        """Whether a worker thread of the camera is still alive (a stopped one may still be
        closing its connection): a lease is released only once this is False."""
        found = (self._slots.get((camera_id, sub)) for sub in (False, True))
        return any(not slot.worker.join(0) for slot in found if slot is not None)

    def notify_health(self, camera_id: str) -> None:
        """Tell the health listeners the camera's health changed (another node's status of
        a camera it holds arrived)."""
        for listener in self._health_listeners:
            listener(camera_id)

    # -- reachability ---------------------------------------------------------------------
    def set_unreachable(self, camera_id: str, reason: str | None) -> None:
        """With a reason: the camera cannot be reached now (its platform is offline, say).
        Its streams stop and show offline with the reason, and whoever asks for them is
        told at once, without a connection attempt. None: reachable again; an always-on
        camera starts, an on-demand one is idle until asked for. Event loop thread."""
        # By key, not a scan: a GB platform going offline calls this for each of its
        # (thousands of) channels.
        found = (self._slots.get((camera_id, sub)) for sub in (False, True))
        slots = [slot for slot in found if slot is not None]
        if reason is None:
            if self._unreachable.pop(camera_id, None) is None:
                return
            for slot in slots:
                # Why it could not be reached is no longer so: not a warning to keep showing.
                slot.stream.health.clear_warning(ErrorKind.UNREACHABLE)
                self._reachable_again(slot)
            return
        self._unreachable[camera_id] = reason
        for slot in slots:
            # A camera without a source keeps saying so: the truer reason.
            if slot.camera.enabled and not isinstance(slot.worker, MissingSource):
                slot.worker.stop()
                slot.stream.health.set_error(ErrorKind.UNREACHABLE, reason, StreamState.OFFLINE)

    def _reachable_again(self, slot: _StreamSlot) -> None:
        camera = slot.camera
        if not camera.enabled or isinstance(slot.worker, MissingSource):
            return
        if not self._holds(camera.id):
            return  # another node's camera: not read here, whatever its reachability
        if camera.mode is IngestMode.ALWAYS_ON:
            if self._started:
                slot.worker.start()
        elif slot.stream.consumers:
            slot.idle_since = time.monotonic()
            slot.worker.start()  # a recorder (or a viewer) still wants it
        else:
            slot.stream.health.set_state(StreamState.IDLE)

    def unreachable_reason(self, camera_id: str) -> str | None:
        return self._unreachable.get(camera_id)

    # -- catalog changes ------------------------------------------------------------------
    def _catalog_changed(self, change: CatalogChange) -> None:
        """The catalog's listener (event loop thread): streams for added cameras, none for
        removed ones, new ones for updated cameras whose URL, transport or mode changed."""
        slots = dict(self._slots)
        gone: list[_StreamSlot] = []
        fresh: list[_StreamSlot] = []
        for camera in change.removed:
            gone += [slots.pop(k) for k in [(camera.id, False), (camera.id, True)] if k in slots]
            self._unreachable.pop(camera.id, None)
        for camera in change.updated:
            old = slots.get((camera.id, False))
            if old is not None and _same_stream(old.camera, camera):
                for sub in (False, True):
                    if (camera.id, sub) in slots:
                        slots[(camera.id, sub)].camera = camera
                continue
            gone += [slots.pop(k) for k in [(camera.id, False), (camera.id, True)] if k in slots]
            made = self._make_slots(camera)
            slots.update(made)
            fresh += made.values()
        for camera in change.added:
            made = self._make_slots(camera)
            slots.update(made)
            fresh += made.values()
        self._slots = slots
        for slot in gone:
            slot.worker.stop()
            # Said to whoever still shows the stream (a mosaic tile) until it lets go.
            slot.stream.health.set_error(ErrorKind.NOT_FOUND, REMOVED, StreamState.OFFLINE)
            slot.stream.close_consumers()  # its viewers end now, not when the thread does
            self._retired.append(slot.worker)
        for slot in fresh:
            if self._should_run(slot) and slot.camera.mode is IngestMode.ALWAYS_ON:
                slot.worker.start()
        # Followers hear of every changed camera (a removed one they then find gone).
        told = {c.id for c in change.added + change.updated + change.removed}
        for camera_id in told:
            for listener in self._health_listeners:
                listener(camera_id)
        if gone or fresh:
            log.info("ingest: %d streams made, %d dropped", len(fresh), len(gone))

    def _should_run(self, slot: _StreamSlot) -> bool:
        return (
            self._started
            and slot.camera.enabled
            and slot.camera.id not in self._unreachable
            and not isinstance(slot.worker, MissingSource)
            and self._holds(slot.camera.id)
        )

    # -- life cycle -----------------------------------------------------------------------
    async def start(self) -> None:
        self._started = True
        for slot in self._slots.values():
            if self._should_run(slot) and slot.camera.mode is IngestMode.ALWAYS_ON:
                slot.worker.start()
        self._monitor_task = asyncio.create_task(self._monitor(), name="ingest-monitor")
        log.info("ingest started: %d streams", len(self._slots))

    async def stop(self) -> None:
        if self._monitor_task:
            self._monitor_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor_task
        workers = [slot.worker for slot in self._slots.values()] + self._retired
        for worker in workers:
            worker.stop()
        # One thread joins them all: a hop to a thread per worker cost 4 s of a stop with
        # 20,000 (mostly never started, on-demand) cameras.
        await asyncio.to_thread(_join_all, workers, time.monotonic() + SHUTDOWN_JOIN_S)

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

    def running_streams(self) -> int:
        """How many streams have a worker reading now (a node's load)."""
        return sum(1 for slot in self._slots.values() if slot.worker.running)

    def ensure_connected(self, camera_id: str, sub: bool = False) -> Stream:
        """Start an on-demand stream (no-op for always-on ones); returns the stream.

        The stream stays up while it has consumers, and ``on_demand_idle_s`` after that.
        """
        slot = self._slots.get((camera_id, sub))
        if slot is None:
            self.stream(camera_id, sub)  # raises the right error
            raise AssertionError("unreachable")
        if not self._holds(camera_id):
            raise CameraElsewhere(camera_id, self._owner(camera_id))
        if slot.camera.id in self._unreachable or isinstance(slot.worker, MissingSource):
            return slot.stream  # offline with its reason: a waiter is told at once
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
        slots = self._slots  # one dict throughout, whatever the loop changes meanwhile
        main_slot = slots.get((camera_id, False))
        if main_slot is None:
            raise CameraNotFound(camera_id)
        sub_slot = slots.get((camera_id, True))
        main = self._snapshot(main_slot)
        sub = self._snapshot(sub_slot) if sub_slot else None
        device = self._device(camera_id)
        return CameraHealth(main_slot.camera, main.state, main, sub, device)

    def _snapshot(self, slot: _StreamSlot) -> HealthSnapshot:
        if self._holds(slot.camera.id):
            return slot.stream.health_snapshot()
        # Another node's camera: its owner's word; the local stream says "no status yet".
        return self._remote(slot.camera.id, slot.sub) or slot.stream.health_snapshot()

    def all_health(self) -> list[CameraHealth]:
        """Every camera's, in catalog order; a camera removed meanwhile is left out."""
        result = []
        for camera_id in self.catalog.cameras:
            with contextlib.suppress(CameraNotFound):
                result.append(self.camera_health(camera_id))
        return result

    def platform_health(
        self, worst_count: int = 5, visible: Callable[[Camera], bool] | None = None
    ) -> list[PlatformHealth]:
        """Per-platform roll-up; with ``visible``, of those cameras only (and only the
        platforms that have any)."""
        return roll_up(self.all_health(), self.catalog.platforms, worst_count, visible)

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
            if self._retired:  # removed cameras' workers, kept until their threads end
                self._retired = [w for w in self._retired if not w.join(0)]
            for slot in self._slots.values():
                if slot.camera.id in self._unreachable:
                    self._hold_unreachable(slot)
                    continue
                if not self._holds(slot.camera.id):
                    self._end_if_hung_after_stop(slot, now, sockets)
                    continue  # not read here: nothing else to check
                self._check(slot, now, update_rates, sockets)
                slot.stream.health.clear_warning_if_steady(wall_now)

    def _check(
        self, slot: _StreamSlot, now: float, update_rates: bool, sockets: SocketIndex
    ) -> None:
        health = slot.stream.health
        if self._settle_parked(slot):
            return
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

    def _end_if_hung_after_stop(self, slot: _StreamSlot, now: float, sockets: SocketIndex) -> None:
        """A camera let go whose worker is still ending: its stop shut down the connection
        of whatever it was doing, but an opening may have connected just after; the worker
        shuts that down too, each round until its thread ends. Else it would outlive the
        hand-off: a connection still open while the next holder connects (a camera read
        twice)."""
        if not slot.worker.join(0):
            stall_after = slot.stream.silence_after_s(self.settings.stall_after_s)
            slot.worker.end_if_hung(now, stall_after, sockets)

    def _settle_parked(self, slot: _StreamSlot) -> bool:
        """A parked on-demand stream is idle, whatever its stopping worker delivered after
        it was asked to stop (a GB worker between two units): a late packet turned it
        online, and without this it would soon read as stalled, forever."""
        health = slot.stream.health
        parked = (
            slot.camera.mode is IngestMode.ON_DEMAND
            and slot.camera.enabled
            and slot.idle_since is None
            and not slot.worker.running
            and not slot.stream.consumers
            and not slot.stream.waiting
        )
        if not parked or health.state not in (StreamState.ONLINE, StreamState.STALLED):
            return False
        slot.stream.ring.clear()
        health.set_state(StreamState.IDLE)
        return True

    def _hold_unreachable(self, slot: _StreamSlot) -> None:
        """A worker asked to stop may still report its own failure as it ends: the reason
        the camera cannot be reached stays the one shown."""
        reason = self._unreachable.get(slot.camera.id)
        health = slot.stream.health
        if reason is None or not slot.camera.enabled or isinstance(slot.worker, MissingSource):
            return
        if health.state is not StreamState.OFFLINE or health.last_error != reason:
            health.set_error(ErrorKind.UNREACHABLE, reason, StreamState.OFFLINE)

    def _park_if_idle(self, slot: _StreamSlot, now: float) -> None:
        # A request waiting for the first picture wants the stream as much as a consumer:
        # a camera slower to connect than on_demand_idle_s was parked under its waiter,
        # which was then told the camera is idle.
        if slot.stream.consumers or slot.stream.waiting:
            slot.idle_since = now
            if (
                not slot.worker.running
                and not isinstance(slot.worker, MissingSource)
                and self._holds(slot.camera.id)
            ):
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


def _join_all(workers: Sequence[IngestSource], deadline: float) -> None:
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))


def _same_stream(old: Camera, new: Camera) -> bool:
    """Whether an updated camera keeps its streams: a new name or tags, yes; a new URL,
    transport, mode or enabled flag needs new workers."""
    return (
        old.stream_url() == new.stream_url()
        and old.has_sub_stream == new.has_sub_stream
        and (not old.has_sub_stream or old.stream_url(True) == new.stream_url(True))
        and (old.transport, old.mode, old.enabled) == (new.transport, new.mode, new.enabled)
    )
