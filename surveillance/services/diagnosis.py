"""Video-quality diagnosis of every always-on camera, at the cost of one keyframe decode per
camera every ``interval_s``.

Each diagnosed camera has a subscription to one stream (its sub-stream where it has one:
same picture, a fraction of the decoding). One pump thread drains every subscription
PUMP_INTERVAL_S (packet sizes, flags and times into each camera's figures: no decoding,
a few Python operations a packet) and keeps each camera's newest keyframe. When a camera's
sample is due, that keyframe is decoded alone on a small pool of DECODE_WORKERS threads
(media/decode.py decode_keyframe), scaled to the analysis size and judged
(services/camera_quality.py). Conditions raised or ended go to the event bus, a raise with
the picture as a JPEG. Threads never wait on the event loop: the bus's methods are
synchronous and thread-safe.

A keyframe already judged is not judged again (a GOP longer than the interval would look
"frozen" against itself): that sample judges the packets only.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from surveillance.catalog import Camera, Catalog, CatalogChange
from surveillance.config.models import DiagnosisConfig, IngestMode
from surveillance.errors import CameraNotFound, CameraUnavailable
from surveillance.events.records import EventPicture, EventRecord, EventSpec, EventType, Severity
from surveillance.events.references import Reference, ReferenceStore
from surveillance.media.decode import decode_keyframe, encode_jpeg
from surveillance.media.fanout import Subscription
from surveillance.media.packet_stats import PacketFigures
from surveillance.media.packets import Packet, StreamInfo
from surveillance.media.picture_checks import SmallPicture, Thresholds
from surveillance.media.stream import Stream
from surveillance.services.camera_quality import (
    CameraQuality,
    Change,
    DiagnosisSettings,
    QualityCheck,
    QualityState,
    picture_of,
)
from surveillance.services.conditions import Timing, Transition
from surveillance.services.ingest import IngestService

log = logging.getLogger(__name__)

PUMP_INTERVAL_S = 0.5  # how often the pump drains every subscription
DECODE_WORKERS = 2  # threads decoding sampled keyframes, for every camera together
QUEUE_PACKETS = 400  # per subscription: 0.5 s of any camera, with room for a stalled pump
SNAPSHOT_WIDTH = 640  # pixels: the picture an event carries
SUMMARIES = {
    QualityCheck.FROZEN: "Picture frozen",
    QualityCheck.DARK: "Picture too dark",
    QualityCheck.BRIGHT: "Picture too bright",
    QualityCheck.COVERED: "Lens covered (no contrast)",
    QualityCheck.DEFOCUS: "Picture out of focus",
    QualityCheck.ONE_COLOUR: "Picture one colour (lens sprayed or painted)",
    QualityCheck.MOVED: "Camera moved away from its reference view",
    QualityCheck.FRAME_RATE: "Frame rate dropped",
}


class EventSink(Protocol):
    """What diagnosis needs of the event bus (services/event_bus.py EventBus)."""

    def raise_event(self, spec: EventSpec, snapshot: EventPicture | None = None) -> EventRecord: ...

    def end_event(self, key: str, at: float | None = None) -> EventRecord | None: ...


def event_key(check: QualityCheck, camera_id: str) -> str:
    return f"quality.{check.value}:{camera_id}"


def camera_settings(config: DiagnosisConfig, tags: Sequence[str]) -> DiagnosisSettings:
    """A camera's settings: each field from the FIRST of its tags that sets it, else from
    ``config`` itself (the rule ``events.diagnosis.tags`` documents)."""
    overrides = [config.tags[tag] for tag in tags if tag in config.tags]

    def pick(name: str, default: Any) -> Any:
        for override in overrides:
            value = getattr(override, name)
            if value is not None:
                return value
        return default

    def threshold(name: str) -> float:
        for override in overrides:
            value = getattr(override.thresholds, name)
            if value is not None:
                return float(value)
        return float(getattr(config.thresholds, name))

    fields = Thresholds.__dataclass_fields__
    return DiagnosisSettings(
        interval_s=config.interval_s,
        settle_s=pick("settle_s", config.settle_s),
        timing=Timing(pick("hold_s", config.hold_s), pick("clear_s", config.clear_s)),
        thresholds=Thresholds(**{name: threshold(name) for name in fields}),
        enabled=config.enabled and pick("enabled", True),
    )


@dataclass
class _Watch:
    """One diagnosed camera: its subscription and judge, and what the pump keeps for it."""

    camera: Camera
    stream: Stream
    subscription: Subscription
    quality: CameraQuality
    info: StreamInfo | None = None  # the connection being read
    keyframe: Packet | None = None  # the newest keyframe
    judged_seq: int = -1  # seq of the last keyframe judged
    busy: bool = False  # a judgement is queued or running


class DiagnosisService:
    def __init__(
        self,
        ingest: IngestService,
        catalog: Catalog,
        events: EventSink,
        references: ReferenceStore,
        config: DiagnosisConfig,
    ) -> None:
        self._ingest = ingest
        self._events = events
        self._references = references
        self._config = config
        # Both replaced whole when cameras come or go (the pump thread and the API read
        # them), never changed in place.
        self._watches: dict[str, _Watch] = {}
        self._settings: dict[str, DiagnosisSettings] = {}
        for camera in catalog.cameras.values():
            settings = camera_settings(config, camera.tags)
            self._settings[camera.id] = settings
        self._catalog = catalog
        self._started = False
        catalog.on_change(self._catalog_changed)
        self._reference_pictures: dict[str, SmallPicture] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None

    # -- life cycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Subscribe to every diagnosed camera and start the pump. Blocking (reads the
        references from the database): call it off the event loop or before serving."""
        for reference in self._references.all():
            self._reference_pictures[reference.camera_id] = _reference_picture(reference)
        for camera in self._catalog.cameras.values():
            if self._diagnosed(camera):
                self._watches[camera.id] = self._watch(camera)
        self._started = True
        if self._watches:
            self._run_pump()
        log.info("diagnosis started: %d cameras", len(self._watches))

    def _watch(self, camera: Camera) -> _Watch:
        stream = self._ingest.stream(camera.id, sub=camera.has_sub_stream)
        subscription = stream.subscribe(from_cached_gop=False, max_packets=QUEUE_PACKETS)
        quality = CameraQuality(camera.id, self._settings[camera.id])
        return _Watch(camera, stream, subscription, quality)

    def _run_pump(self) -> None:
        """The pump and its decoders, once there is a camera to diagnose."""
        if self._thread is not None:
            return
        self._pool = ThreadPoolExecutor(DECODE_WORKERS, thread_name_prefix="diagnosis-decode")
        self._thread = threading.Thread(target=self._pump, name="diagnosis-pump", daemon=True)
        self._thread.start()

    # -- cameras that come and go ---------------------------------------------------------
    def _catalog_changed(self, change: CatalogChange) -> None:
        """The catalog's listener (event loop thread, after the ingest made the streams):
        watches for cameras added, none for removed ones (their quality events end), new
        ones for cameras whose stream or settings changed."""
        settings = dict(self._settings)
        watches = dict(self._watches)
        for camera in change.removed:
            settings.pop(camera.id, None)
            self._unwatch(watches.pop(camera.id, None))
        for camera in change.added + change.updated:
            settings[camera.id] = camera_settings(self._config, camera.tags)
        self._settings = settings
        for camera in change.added + change.updated:
            old = watches.get(camera.id)
            if old is not None and self._same_watch(old, camera):
                old.camera = camera
                continue
            self._unwatch(watches.pop(camera.id, None))
            if self._started and self._diagnosed(camera):
                watches[camera.id] = self._watch(camera)
        self._watches = watches
        if self._started and watches and not self._stop.is_set():
            self._run_pump()

    def _same_watch(self, watch: _Watch, camera: Camera) -> bool:
        try:
            stream = self._ingest.stream(camera.id, sub=camera.has_sub_stream)
        except CameraNotFound:
            return False
        same_settings = watch.quality.settings == self._settings[camera.id]
        return self._diagnosed(camera) and same_settings and stream is watch.stream

    def _unwatch(self, watch: _Watch | None) -> None:
        """Stop diagnosing: no more packets, and its active quality events end (no one
        watches their condition any more)."""
        if watch is None:
            return
        watch.subscription.close()
        for check in watch.quality.active():
            self._events.end_event(event_key(check, watch.camera.id))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2 * PUMP_INTERVAL_S + 1)
        for watch in self._watches.values():
            watch.subscription.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _diagnosed(self, camera: Camera) -> bool:
        # On-demand cameras are connected only while someone watches: diagnosis must not
        # keep them up (nor judge their parking as a fault).
        return (
            camera.enabled
            and camera.mode is IngestMode.ALWAYS_ON
            and self._settings[camera.id].enabled
        )

    # -- what the API asks ----------------------------------------------------------------
    def state(self, camera_id: str) -> QualityState | None:
        """The camera's quality state, ``measured_at`` in wall seconds; None: not diagnosed."""
        watch = self._watches.get(camera_id)
        if watch is None:
            return None
        now = time.monotonic()
        state = watch.quality.state(now)
        measured = None if state.measured_at is None else _wall(state.measured_at, now)
        return dataclasses.replace(state, measured_at=measured)

    def settings(self, camera_id: str) -> DiagnosisSettings:
        found = self._settings.get(camera_id)
        if found is None:  # removed from the catalog a moment ago
            raise CameraNotFound(camera_id)
        return found

    def active_checks(self) -> Mapping[str, frozenset[QualityCheck]]:
        """Each diagnosed camera's checks whose event is active (for /metrics)."""
        return {camera_id: w.quality.active() for camera_id, w in self._watches.items()}

    def reference(self, camera_id: str) -> Reference | None:
        """Blocking: reads the database."""
        return self._references.get(camera_id)

    def set_reference(self, camera_id: str, user: str) -> Reference:
        """Take the camera's current picture (its newest keyframe, of the stream diagnosis
        reads) as its reference. Blocking: decodes and writes the database. Raises
        CameraNotFound, or CameraUnavailable when the camera has no picture now."""
        camera = self._catalog.camera(camera_id)
        if camera is None:
            raise CameraNotFound(camera_id)
        stream = self._ingest.stream(camera_id, sub=camera.has_sub_stream)
        keyframe = stream.ring.latest_keyframe()
        frame = None if keyframe is None else decode_keyframe(keyframe)
        if frame is None:
            health = stream.health
            raise CameraUnavailable(camera_id, health.state.value, health.last_error)
        picture = picture_of(frame)
        jpeg, _, _ = encode_jpeg(frame, SNAPSHOT_WIDTH)
        width, height = picture.size
        reference = Reference(
            camera_id=camera_id,
            luma=np.clip(np.rint(picture.luma), 0, 255).astype(np.uint8).tobytes(),
            width=width,
            height=height,
            jpeg=jpeg,
            set_by=user,
            set_at=time.time(),
        )
        self._references.put(reference)
        self._reference_pictures[camera_id] = _reference_picture(reference)
        return reference

    def clear_reference(self, camera_id: str) -> bool:
        """Forget the camera's reference (its moved event then ends). Blocking."""
        self._reference_pictures.pop(camera_id, None)
        return self._references.remove(camera_id)

    # -- the pump thread -----------------------------------------------------------------
    def _pump(self) -> None:
        while not self._stop.wait(PUMP_INTERVAL_S):
            for watch in self._watches.values():
                try:
                    self._drain(watch)
                except Exception:  # one camera's surprise must not end every camera's watch
                    log.exception("diagnosis of %s failed", watch.camera.id)

    def _drain(self, watch: _Watch) -> None:
        quality = watch.quality
        if watch.subscription.closed and self._watches.get(watch.camera.id) is watch:
            # The stream's worker ended and closed its consumers (the camera was marked
            # unreachable): follow the stream again, from its next keyframe.
            watch.subscription = watch.stream.subscribe(
                from_cached_gop=False, max_packets=QUEUE_PACKETS
            )
        for packet in watch.subscription.take_pending(QUEUE_PACKETS):
            new_connection = packet.info is not watch.info
            if new_connection:
                watch.info, watch.keyframe = packet.info, None
            timestamp = packet.dts if packet.dts is not None else packet.pts
            quality.packet(
                packet.size,
                packet.keyframe,
                None if timestamp is None else float(timestamp * packet.info.time_base),
                packet.received_at,
                new_connection=new_connection,
            )
            if packet.keyframe:
                watch.keyframe = packet
        now = time.monotonic()
        if watch.busy or not quality.due(now):
            return
        window, connection = quality.take_window(now)
        keyframe = watch.keyframe
        fresh = keyframe is not None and keyframe.seq != watch.judged_seq
        if fresh and quality.settling(now):
            fresh = False  # a settling camera's picture is not worth a decode
        if fresh and keyframe is not None:
            watch.judged_seq = keyframe.seq
        watch.busy = True
        assert self._pool is not None
        self._pool.submit(self._judge, watch, now, window, connection, keyframe if fresh else None)

    # -- a decode worker -----------------------------------------------------------------
    def _judge(
        self,
        watch: _Watch,
        now: float,
        window: PacketFigures,
        connection: int,
        keyframe: Packet | None,
    ) -> None:
        try:
            frame = None if keyframe is None else decode_keyframe(keyframe)
            picture = None if frame is None else picture_of(frame)
            reference = self._reference_pictures.get(watch.camera.id)
            changes = watch.quality.judge(now, window, connection, picture, reference)
            for change in changes:
                self._publish(watch, change, frame, keyframe)
        except Exception:
            log.exception("diagnosis of %s failed", watch.camera.id)
        finally:
            watch.busy = False

    def _publish(self, watch: _Watch, change: Change, frame: Any, keyframe: Packet | None) -> None:
        camera = watch.camera
        key = event_key(change.check, camera.id)
        at = _wall(change.at, time.monotonic())
        if change.transition is Transition.END:
            self._events.end_event(key, at=at)
            return
        snapshot = None
        if frame is not None and keyframe is not None:
            jpeg, width, height = encode_jpeg(frame, SNAPSHOT_WIDTH)
            snapshot = EventPicture(
                jpeg, width, height, _wall(keyframe.received_at, time.monotonic())
            )
        spec = EventSpec(
            type=EventType(f"quality.{change.check.value}"),
            severity=Severity.WARNING,
            key=key,
            summary=SUMMARIES[change.check],
            camera_id=camera.id,
            platform_id=camera.platform_id,
            detail={"check": change.check.value, **change.detail},
            at=at,
        )
        self._events.raise_event(spec, snapshot)


def _reference_picture(reference: Reference) -> SmallPicture:
    luma = np.frombuffer(reference.luma, dtype=np.uint8).reshape(reference.height, reference.width)
    return SmallPicture.from_luma(luma.astype(np.float32))


def _wall(monotonic_at: float, monotonic_now: float) -> float:
    """A time of the monotonic clock on the wall clock (event times are wall seconds)."""
    return time.time() - (monotonic_now - monotonic_at)
