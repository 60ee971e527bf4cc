"""Prometheus metrics, collected on scrape from live health (no global registry).

Labels are ids only: never a URL, a user name or anything else that might carry a secret.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from surveillance.errors import CameraNotFound
from surveillance.media.health import StreamState
from surveillance.services.camera_quality import QualityCheck
from surveillance.services.diagnosis import DiagnosisService
from surveillance.services.event_bus import EventBus
from surveillance.services.gb_registry import GbRegistry
from surveillance.services.ingest import IngestService
from surveillance.services.recorder import RecorderService, RecordingState
from surveillance.services.zone_motion import ZoneMotionService


class IngestCollector(Collector):
    def __init__(self, ingest: IngestService, recorder: RecorderService | None = None) -> None:
        self._ingest = ingest
        self._recorder = recorder

    def collect(self) -> Iterator[Metric]:
        labels = ["camera", "platform"]
        up = GaugeMetricFamily(
            "surveillance_camera_up", "1 if the main stream is online", labels=labels
        )
        state = GaugeMetricFamily(
            "surveillance_camera_state", "1 for the camera's current state",
            labels=[*labels, "state"],
        )  # fmt: skip
        fps = GaugeMetricFamily(
            "surveillance_camera_fps", "Frames per second received", labels=labels
        )
        bitrate = GaugeMetricFamily(
            "surveillance_camera_bitrate_kbps", "Received bitrate, kbit/s", labels=labels
        )
        age = GaugeMetricFamily(
            "surveillance_camera_last_packet_age_seconds", "Seconds since the last packet",
            labels=labels,
        )  # fmt: skip
        ring = GaugeMetricFamily(
            "surveillance_camera_ring_bytes", "Bytes of compressed packets held", labels=labels
        )
        recording = GaugeMetricFamily(
            "surveillance_camera_recording_state", "1 for the camera's recording state",
            labels=[*labels, "state"],
        )  # fmt: skip
        reconnects = CounterMetricFamily(
            "surveillance_camera_reconnects", "Reconnect attempts of the main stream",
            labels=labels,
        )  # fmt: skip
        for health in self._ingest.all_health():
            values = [health.camera.id, health.camera.platform_id]
            main = health.main
            up.add_metric(values, 1.0 if health.state is StreamState.ONLINE else 0.0)
            for candidate in StreamState:
                state.add_metric(
                    [*values, candidate.value], 1.0 if candidate is health.state else 0.0
                )
            if main.fps is not None:
                fps.add_metric(values, main.fps)
            if main.bitrate_kbps is not None:
                bitrate.add_metric(values, main.bitrate_kbps)
            if main.last_packet_age_s is not None:
                age.add_metric(values, main.last_packet_age_s)
            ring.add_metric(values, float(main.ring_bytes))
            reconnects.add_metric(values, float(main.reconnects))
            if self._recorder is not None:
                try:
                    current = self._recorder.status(health.camera.id).state
                except CameraNotFound:  # removed from the catalog since all_health()
                    continue
                for candidate_state in RecordingState:
                    recording.add_metric(
                        [*values, candidate_state.value],
                        1.0 if candidate_state is current else 0.0,
                    )
        yield from (up, state, fps, bitrate, age, ring, reconnects)
        if self._recorder is not None:
            yield recording
            # The disk budget removing footage still inside its retention: something else
            # fills the recordings' file system (services/retention.py warns too).
            removed = CounterMetricFamily(
                "surveillance_recording_removed_within_retention_bytes",
                "Bytes of footage the disk budget removed while still inside its retention",
            )
            removed.add_metric([], float(self._recorder.removed_within_retention_bytes))
            yield removed

        ratio = GaugeMetricFamily(
            "surveillance_platform_online_ratio",
            "Online cameras over cameras expected online", labels=["platform"],
        )  # fmt: skip
        counts = GaugeMetricFamily(
            "surveillance_platform_cameras", "Cameras per state", labels=["platform", "state"]
        )
        for rollup in self._ingest.platform_health():
            if rollup.online_ratio is not None:
                ratio.add_metric([rollup.platform_id], rollup.online_ratio)
            for state_name, count in rollup.by_state.items():
                counts.add_metric([rollup.platform_id, state_name], float(count))
        yield from (ratio, counts)


class EventsCollector(Collector):
    def __init__(self, events: EventBus) -> None:
        self._events = events

    def collect(self) -> Iterator[Metric]:
        open_now = GaugeMetricFamily(
            "surveillance_events_open", "Events nobody has acknowledged yet",
            labels=["severity"],
        )  # fmt: skip
        for severity, count in self._events.open_counts().items():
            open_now.add_metric([severity.value], float(count))
        raised = CounterMetricFamily(
            "surveillance_events_raised", "New events since the node started", labels=["type"]
        )
        for event_type, count in sorted(self._events.raised_counts().items()):
            raised.add_metric([event_type], float(count))
        yield from (open_now, raised)


class QualityCollector(Collector):
    """Each diagnosed camera's checks: 1 while the check's event is active, else 0."""

    def __init__(self, diagnosis: DiagnosisService) -> None:
        self._diagnosis = diagnosis

    def collect(self) -> Iterator[Metric]:
        quality = GaugeMetricFamily(
            "surveillance_camera_quality",
            "1 while the camera's video-quality check has an active event",
            labels=["camera", "check"],
        )
        for camera_id, active in sorted(self._diagnosis.active_checks().items()):
            for check in QualityCheck:
                quality.add_metric([camera_id, check.value], float(check in active))
        yield quality


class ZoneMotionCollector(Collector):
    def __init__(self, zone_motion: ZoneMotionService) -> None:
        self._zone_motion = zone_motion

    def collect(self) -> Iterator[Metric]:
        armed = GaugeMetricFamily(
            "surveillance_zone_armed", "Zones armed now (cameras with any)", labels=["camera"]
        )
        for camera_id, count in sorted(self._zone_motion.armed().items()):
            armed.add_metric([camera_id], float(count))
        decoding = GaugeMetricFamily(
            "surveillance_zone_motion_decoding_cameras",
            "Cameras decoded for zone motion now (those with a zone armed)",
        )
        decoding.add_metric([], float(len(self._zone_motion.decoding())))
        yield from (armed, decoding)


class GbCollector(Collector):
    """GB/T 28181 platforms: registered and alive, channels, keepalive age; SIP dropped."""

    def __init__(self, gb: GbRegistry) -> None:
        self._gb = gb

    def collect(self) -> Iterator[Metric]:
        labels = ["platform"]
        online = GaugeMetricFamily(
            "surveillance_gb_platform_online", "1 while the platform is registered and alive",
            labels=labels,
        )  # fmt: skip
        channels = GaugeMetricFamily(
            "surveillance_gb_channels", "Video channels in the platform's catalog", labels=labels
        )
        age = GaugeMetricFamily(
            "surveillance_gb_keepalive_age_seconds",
            "Seconds since the platform's last keepalive (or REGISTER)", labels=labels,
        )  # fmt: skip
        now = time.time()
        for status in self._gb.status():
            values = [status.platform_id]
            online.add_metric(values, float(status.online))
            channels.add_metric(values, float(status.channels))
            heard = [t for t in (status.last_keepalive_at, status.registered_at) if t is not None]
            if heard:
                age.add_metric(values, max(0.0, now - max(heard)))
        dropped = CounterMetricFamily(
            "surveillance_gb_sip_dropped", "SIP messages dropped or refused, by reason",
            labels=["reason"],
        )  # fmt: skip
        for reason, count in sorted(self._gb.dropped().items()):
            dropped.add_metric([reason], float(count))
        yield from (online, channels, age, dropped)


def build_registry(
    ingest: IngestService,
    recorder: RecorderService | None = None,
    *,
    events: EventBus | None = None,
    diagnosis: DiagnosisService | None = None,
    zone_motion: ZoneMotionService | None = None,
    gb: GbRegistry | None = None,
) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(IngestCollector(ingest, recorder))
    if events is not None:
        registry.register(EventsCollector(events))
    if diagnosis is not None:
        registry.register(QualityCollector(diagnosis))
    if zone_motion is not None:
        registry.register(ZoneMotionCollector(zone_motion))
    if gb is not None:
        registry.register(GbCollector(gb))
    return registry
