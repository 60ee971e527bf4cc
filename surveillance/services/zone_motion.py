"""Motion in armed zones: only cameras with a zone armed now decode, small and grey.

A control task on the loop looks every ``CONTROL_INTERVAL_S`` at which zones are armed
(enabled, and their schedule says now, in the node's local time) and keeps one watcher
thread per camera that has any: it subscribes to the camera's sub-stream where it has one
(else its main stream), decodes every packet (a P-frame needs its predecessors) without
the deblocking filter and on one thread, and shrinks to ``zones.width`` in grey only
``zones.fps`` pictures a second for the detector (media/motion.py). A schedule that
disarms, a zone removed or changed, a camera disabled: the watcher stops (or restarts
with the new zones) at the next look, and the decoding with it.

After every (re)connect the detector warms its background for ``WARM_S`` before it may
report motion, so a reconnect's first pictures (which may differ entirely from the last
ones) raise nothing. Motion held ``hold_s`` raises a ``zone.motion`` ALARM with the
picture and the zone's outline (zones/hold.py has the timing); while motion goes on the
alarm's last_seen_at moves on every ``LAST_SEEN_EVERY_S``; ``clear_s`` without motion
ends it, and the zone rests ``cooldown_s``.

A stream outage is not the end of motion: the camera went silent, the intruder did not
leave. Time in which the zone is not seen (the outage, then the re-warm) does not count
towards ``clear_s``, so a camera back within ``events.offline_after_s`` (the time the node
itself gives a camera before calling it offline) continues the same alarm if motion goes
on, or ends it ``clear_s`` after it is seen again without motion. Silent for
``offline_after_s``, the camera is offline and its zones' alarms end: nobody can say any
more that there is motion.

The bus's write methods are synchronous and thread-safe (events-spec): the watcher calls
them from its thread, never waiting on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from surveillance.catalog import Camera, Catalog
from surveillance.config.models import ZoneMotionConfig
from surveillance.errors import SurveillanceError
from surveillance.events.records import EventPicture, EventSpec, EventType, Severity
from surveillance.media.decode import PacketDecoder, new_decoder
from surveillance.media.fanout import Subscription, SubscriptionClosed
from surveillance.media.motion import MotionDetector, ZoneMotion, luma_small, outlined_jpeg
from surveillance.media.packets import StreamInfo
from surveillance.media.stream import Stream
from surveillance.services.ingest import IngestService
from surveillance.zones.hold import Change, MotionHold
from surveillance.zones.records import ZoneRecord
from surveillance.zones.store import ZoneStore

log = logging.getLogger(__name__)

CONTROL_INTERVAL_S = 1.0  # how often armed zones are looked at (schedules are in minutes)
WARM_S = 2.0  # of pictures that only build the background after each (re)connect
WATCH_QUEUE_PACKETS = 100  # ~4 s at 25 fps; further behind, the watcher skips to a keyframe
WATCH_POLL_S = 0.5  # how often an idle watcher checks whether it should end
# A gap between pictures this long means the zone went unseen, for a stream without a
# liveness rule of its own (Stream.silence_after_s adapts it to a slow camera's interval).
UNSEEN_AFTER_S = 2.0
LAST_SEEN_EVERY_S = 5.0  # an ongoing alarm's last_seen_at: one write this often, not per picture
SNAPSHOT_WIDTH = 640  # an alarm's picture: enough to see who, small enough to store
JOIN_S = 3.0  # how long stop() waits for a watcher thread


class AlarmSink(Protocol):
    """What zone motion needs of the event bus (services/event_bus.py EventBus)."""

    def raise_event(self, spec: EventSpec, snapshot: EventPicture | None = None) -> Any: ...

    def end_event(self, key: str, at: float | None = None) -> Any: ...


def motion_key(camera_id: str, zone_id: int) -> str:
    return f"motion:{camera_id}:{zone_id}"


def _wall_time(received_at: float) -> float:
    """A packet's monotonic arrival as wall-clock seconds (what events store)."""
    return time.time() - (time.monotonic() - received_at)


def _watch_decoder(info: StreamInfo) -> Any:
    ctx = new_decoder(info)
    ctx.thread_count = 1  # one thread per watched camera already
    # The deblocking filter is a third to a half of H.264 decoding here and changes
    # nothing the shrunk grey picture keeps (media/tile_source.py measured it for tiles).
    ctx.options = {"skip_loop_filter": "all"}
    return ctx


@dataclass
class _Zone:
    record: ZoneRecord
    hold: MotionHold
    reported_at: float = float("-inf")  # monotonic: when the bus last heard of its motion


class CameraWatch:
    """One camera's zones, watched by a thread of its own while any is armed."""

    def __init__(
        self,
        camera: Camera,
        stream: Stream,
        zones: list[ZoneRecord],
        config: ZoneMotionConfig,
        alarms: AlarmSink,
        offline_after_s: float,
    ) -> None:
        """``offline_after_s``: a silence this long ends the zones' alarms (events config)."""
        self.camera = camera
        self.stream = stream
        self.zones = {z.id: _Zone(z, MotionHold(config.hold_s, config.clear_s,
                                                config.cooldown_s)) for z in zones}  # fmt: skip
        self.signature = _signature(zones)
        self._config = config
        self._alarms = alarms
        self._offline_after_s = offline_after_s
        self._period_s = 1.0 / config.fps
        self._warm_pictures = max(1, round(WARM_S * config.fps))
        self._stop = threading.Event()
        self._subscription: Subscription | None = None
        self._thread: threading.Thread | None = None
        self.analysed = 0  # pictures given to the detector, for tests and benchmarks

    def start(self) -> None:
        # Subscribe here, not in the thread: the stream counts this consumer from now on,
        # so an on-demand camera cannot be parked in between.
        self._subscription = self.stream.subscribe(
            from_cached_gop=True, max_packets=WATCH_QUEUE_PACKETS
        )
        self._thread = threading.Thread(
            target=self._run, args=(self._subscription,), name=f"zones:{self.stream.key}",
            daemon=True,
        )  # fmt: skip
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._subscription is not None:
            self._subscription.close()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self, subscription: Subscription) -> None:
        try:
            self._watch(subscription)
        except Exception:
            log.exception("zone watcher of %s failed", self.stream.key)
        finally:
            subscription.close()
            # A disarmed or changed zone's alarm ends now: nobody watches it any more.
            self._end_all(time.time())

    def _watch(self, subscription: Subscription) -> None:
        decoder = PacketDecoder(_watch_decoder)
        detector: MotionDetector | None = None
        info: StreamInfo | None = None
        next_at = 0.0
        heard_at = time.monotonic()  # the last packet's arrival
        seen_at: float | None = None  # the last picture a warm detector judged
        rewarmed = False  # the background started over since then: the gap was unseen
        while not self._stop.is_set():
            try:
                packet = subscription.get(timeout=WATCH_POLL_S)
            except SubscriptionClosed:
                return
            if packet is None:
                if time.monotonic() - heard_at >= self._offline_after_s:
                    self._end_all(time.time())  # offline now: its alarms end
                continue
            heard_at = packet.received_at
            frame = decoder.decode(packet)
            if decoder.info is not info:  # a new connection: start the background over
                info = decoder.info
                detector = None
                for zone in self.zones.values():
                    zone.hold.reset()
            if frame is None or packet.received_at < next_at:
                continue
            next_at = max(next_at + self._period_s, packet.received_at + self._period_s / 2)
            grey = luma_small(frame, self._config.width)
            if detector is None or detector.height != grey.shape[0]:
                detector = MotionDetector(
                    grey.shape[1], grey.shape[0],
                    {z.record.id: (z.record.points, z.record.sensitivity)
                     for z in self.zones.values()},
                    self._warm_pictures,
                )  # fmt: skip
                rewarmed = seen_at is not None
            self.analysed += 1
            warm = detector.warm
            motion = detector.update(grey)
            if not warm:  # the zone is not seen yet: no verdict for motion, nor against it
                continue
            now = packet.received_at
            if seen_at is not None:
                gap = now - seen_at
                if rewarmed or gap >= self.stream.silence_after_s(UNSEEN_AFTER_S):
                    for zone in self.zones.values():
                        zone.hold.blind(gap)
            seen_at, rewarmed = now, False
            self._verdicts(motion, now, frame)

    def _verdicts(self, motion: Mapping[int, ZoneMotion], now: float, frame: Any) -> None:
        """Each zone's verdict on the picture ``frame`` that arrived at ``now``."""
        for zone_id, zone in self.zones.items():
            seen = motion.get(zone_id)
            moving = seen is not None and seen.moving
            change = zone.hold.update(moving, now)
            if change is Change.RAISE and seen is not None:
                self._raise(zone, seen, frame, now, first=True)
            elif change is Change.END:
                self._end(zone, _wall_time(now))
            elif (
                moving
                and seen is not None
                and zone.hold.active
                and now - zone.reported_at >= LAST_SEEN_EVERY_S
            ):
                self._raise(zone, seen, frame, now, first=False)

    def _raise(self, zone: _Zone, seen: ZoneMotion, frame: Any, now: float, first: bool) -> None:
        """Raise the zone's alarm (``first``: with its picture) or tell the bus that its
        motion goes on (the same key: the active event's last_seen_at moves on)."""
        record = zone.record
        zone.reported_at = now
        at = _wall_time(now)
        picture = None
        if first:
            jpeg, width, height = outlined_jpeg(frame, record.points, SNAPSHOT_WIDTH)
            picture = EventPicture(jpeg, width, height, at)
        spec = EventSpec(
            type=EventType.ZONE_MOTION,
            severity=Severity.ALARM,
            key=motion_key(self.camera.id, record.id),
            summary=f"Motion in zone {record.name}",
            camera_id=self.camera.id,
            platform_id=self.camera.platform_id,
            zone_id=record.id,
            detail={
                "zone": record.name,
                "tag": record.tag,
                "share": round(seen.share, 3),
                "blob_px": seen.blob_px,
            },
            at=at,
        )
        try:
            self._alarms.raise_event(spec, picture)
        except Exception:  # the database may be full or gone: the watcher goes on
            log.exception("could not raise the motion alarm of zone %s", record.id)

    def _end_all(self, at: float) -> None:
        for zone in self.zones.values():
            if zone.hold.active:
                self._end(zone, at)

    def _end(self, zone: _Zone, at: float) -> None:
        zone.hold.active = False
        try:
            self._alarms.end_event(motion_key(self.camera.id, zone.record.id), at)
        except Exception:
            log.exception("could not end the motion alarm of zone %s", zone.record.id)


def _signature(zones: list[ZoneRecord]) -> tuple[tuple[int, float], ...]:
    """What makes a watcher current: its zones and their versions."""
    return tuple(sorted((z.id, z.updated_at) for z in zones))


class ZoneMotionService:
    def __init__(
        self,
        ingest: IngestService,
        catalog: Catalog,
        store: ZoneStore,
        alarms: AlarmSink,
        config: ZoneMotionConfig,
        offline_after_s: float,
        local_now: Callable[[], datetime] = datetime.now,
    ) -> None:
        """``offline_after_s``: events.offline_after_s; an outage shorter than it does not
        end a zone's alarm (module docstring)."""
        self._ingest = ingest
        self._catalog = catalog
        self._store = store
        self._alarms = alarms
        self._config = config
        self._offline_after_s = offline_after_s
        self._local_now = local_now
        self._zones: list[ZoneRecord] = []
        self._dirty = threading.Event()
        self._watches: dict[str, CameraWatch] = {}
        self._armed: dict[str, int] = {}  # camera id -> zones armed now
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._store.add_listener(self._dirty.set)
        self._dirty.set()
        self._task = asyncio.create_task(self._control(), name="zone-motion")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        watches, self._watches = list(self._watches.values()), {}
        for watch in watches:
            watch.stop()
        for watch in watches:
            await asyncio.to_thread(watch.join, JOIN_S)

    def armed(self) -> dict[str, int]:
        """Zones armed now, per camera with any (for /metrics)."""
        return dict(self._armed)

    def decoding(self) -> list[str]:
        """The cameras being decoded for zone motion now."""
        return sorted(self._watches)

    async def _control(self) -> None:
        while True:
            try:
                if self._dirty.is_set():
                    self._dirty.clear()
                    self._zones = await asyncio.to_thread(self._store.zones)
                await self._reconcile()
            except Exception:  # e.g. the database briefly locked: try again next time
                log.exception("zone motion control failed")
            await asyncio.sleep(CONTROL_INTERVAL_S)

    def _current_stream(self, camera: Camera) -> Stream | None:
        try:
            return self._ingest.stream(camera.id, sub=camera.has_sub_stream)
        except SurveillanceError:  # removed from the catalog
            return None

    async def _reconcile(self) -> None:
        now = self._local_now()
        armed: dict[str, list[ZoneRecord]] = {}
        for zone in self._zones:
            camera = self._catalog.camera(zone.camera_id)
            if camera is not None and camera.enabled and zone.armed_at(now):
                armed.setdefault(zone.camera_id, []).append(zone)
        self._armed = {camera_id: len(zones) for camera_id, zones in armed.items()}
        stopped = []
        for camera_id, watch in list(self._watches.items()):
            zones = armed.get(camera_id)
            # A camera whose URL changed while the node runs has a new stream (catalog.py).
            if (
                zones is None
                or not self._ingest.holds(camera_id)  # its new owner watches it (cluster)
                or _signature(zones) != watch.signature
                or self._current_stream(watch.camera) is not watch.stream
            ):
                watch.stop()
                stopped.append(watch)
                del self._watches[camera_id]
        for watch in stopped:  # its alarms are ended before a new watcher may raise them
            await asyncio.to_thread(watch.join, JOIN_S)
        for camera_id, zones in armed.items():
            if camera_id in self._watches:
                continue
            camera = self._catalog.camera(camera_id)
            if camera is None:
                continue  # removed while the stopped watches ended: the next round forgets it
            if not self._ingest.holds(camera_id):
                continue  # another node's camera (cluster mode): its owner watches it
            stream = self._ingest.ensure_connected(camera_id, sub=camera.has_sub_stream)
            watch = CameraWatch(
                camera, stream, zones, self._config, self._alarms, self._offline_after_s
            )
            watch.start()
            self._watches[camera_id] = watch
            log.info("zone motion: watching %s (%d zones armed)", stream.key, len(zones))
