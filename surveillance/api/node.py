"""The running node's services, built and torn down by the app's lifespan."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine

from surveillance.api.forward import Forwarder
from surveillance.auth.audit import AuditAction, AuditEntry, AuditLog
from surveillance.auth.ratelimit import AttemptLimiter
from surveillance.auth.shared_ratelimit import build_sign_in_limiter
from surveillance.auth.store import AuthStore, SessionPolicy
from surveillance.cases.service import CaseService
from surveillance.catalog import Catalog, camera_secrets
from surveillance.cluster.errors import NodeIdTaken
from surveillance.cluster.store import ClusterStore
from surveillance.config.models import AppConfig
from surveillance.db import create_db_engine, database_secrets, database_url, upgrade
from surveillance.events.clips import ClipShelf
from surveillance.events.references import ReferenceStore
from surveillance.events.store import EventStore
from surveillance.media.memory import limit_malloc_arenas
from surveillance.media.peers import PeerSessions
from surveillance.recordings.records import SegmentRecord
from surveillance.recordings.store import RecordingStore
from surveillance.redact import Redactor
from surveillance.services.access import Access
from surveillance.services.alarm_cases import AlarmCases
from surveillance.services.alarm_clips import CLIP_DIR, AlarmClips
from surveillance.services.availability import AvailabilityService
from surveillance.services.camera_ownership import Ownership
from surveillance.services.cases import build_case_service
from surveillance.services.cluster_membership import Membership
from surveillance.services.cluster_notify import Notifier
from surveillance.services.device_health import local_device_health, node_device_health
from surveillance.services.diagnosis import DiagnosisService
from surveillance.services.event_bus import EventBus
from surveillance.services.evidence import LiveFootage
from surveillance.services.export_budget import SCRATCH_DIR, ExportBudget
from surveillance.services.footage_times import iso
from surveillance.services.gb_control import GbControl
from surveillance.services.gb_play import GbPlayer
from surveillance.services.gb_registry import GbRegistry, build_gb_registry
from surveillance.services.gb_source import build_gb_player
from surveillance.services.health_alarms import HealthAlarms
from surveillance.services.health_events import HealthEvents
from surveillance.services.ingest import IngestService
from surveillance.services.live import LiveService
from surveillance.services.live_sessions import LiveViews
from surveillance.services.mosaic import MosaicService
from surveillance.services.mse_tickets import MseTickets
from surveillance.services.node_heartbeat import NodeHeartbeat
from surveillance.services.onvif_clock import CameraClocks
from surveillance.services.onvif_discovery import DiscoveryService
from surveillance.services.onvif_events import OnvifEvents
from surveillance.services.ptz_control import PtzControl
from surveillance.services.ptz_drivers import PtzDrivers
from surveillance.services.ptz_leases import PtzLeaseStore
from surveillance.services.recorder import RecorderService
from surveillance.services.recordings import RecordingsService
from surveillance.services.remote_events import relay_events
from surveillance.services.remote_health import HealthPublisher, RemoteHealth
from surveillance.services.retention import FILE_ALREADY_GONE
from surveillance.services.session_revocation import SessionRevocations
from surveillance.services.snapshots import SnapshotService
from surveillance.services.zone_motion import ZoneMotionService
from surveillance.wall.store import WallStore
from surveillance.zones.store import ZoneStore

log = logging.getLogger(__name__)

# The data directory holds the database (password hashes), the evidence and the node's
# signing key: the service's user alone may enter it (its files are 0600 or 0400 too).
DATA_DIR_MODE = 0o700
# Who the audit log names for retention's removals: the node itself, not a user.
RETENTION_ACTOR = "retention"


@dataclass
class Node:
    config: AppConfig
    catalog: Catalog
    redactor: Redactor
    engine: Engine
    ingest: IngestService
    snapshots: SnapshotService
    live: LiveService
    footage: LiveFootage
    cases: CaseService
    wall: WallStore
    mosaic: MosaicService
    auth: AuthStore
    audit: AuditLog
    sign_in_limiter: AttemptLimiter
    access: Access
    live_views: LiveViews
    health_events: HealthEvents
    recordings: RecordingStore
    recorder: RecorderService
    recorded: RecordingsService  # recorded footage as people and cases ask for it
    exports: ExportBudget  # exports running at once, and their scratch files
    events: EventBus  # events and alarms, raised by the services below, followed by pages
    health_alarms: HealthAlarms  # camera health into events
    diagnosis: DiagnosisService  # video-quality checks into events
    zones: ZoneStore  # motion zones drawn on cameras' pictures
    zone_motion: ZoneMotionService  # decodes cameras with a zone armed, raises their alarms
    alarm_clips: AlarmClips  # the footage around each alarm, kept for its case
    alarm_cases: AlarmCases  # an event into a case with its picture and clip
    heartbeat: NodeHeartbeat  # the node's up-time as an event: the reports' monitored time
    availability: AvailabilityService  # per platform and day online rate, from the events
    gb_control: GbControl  # PTZ of GB/T 28181 channels; their platforms' alarms into events
    ptz: PtzControl  # steering cameras (ONVIF, GB/T 28181): leases, deadman, idle return home
    revocations: SessionRevocations  # revoked access ends live views and streams at once
    clocks: CameraClocks  # ONVIF cameras' clock offsets: health, evidence, camera.clock
    onvif_events: OnvifEvents  # ONVIF cameras' motion and tamper into events (PullPoint)
    discovery: DiscoveryService  # ONVIF discovery runs an administrator starts
    started_at: float = field(default_factory=time.time)
    gb: GbRegistry | None = None  # the GB/T 28181 SIP server, when gb28181.enabled
    gb_player: GbPlayer | None = None  # its channels' video on demand (INVITE, BYE)
    notifier: Notifier | None = None  # LISTEN/NOTIFY between the nodes, in cluster mode
    remote_health: RemoteHealth | None = None  # other nodes' cameras' health, shown here
    health_publisher: HealthPublisher | None = None  # this node's cameras' health, for them
    # Cluster mode (cluster.enabled) only: the shared tables, this node's row, its leases.
    cluster_store: ClusterStore | None = None
    membership: Membership | None = None
    ownership: Ownership | None = None
    forwarder: Forwarder = field(default_factory=Forwarder)  # to cameras' owners (cluster)
    mse_tickets: MseTickets = field(default_factory=MseTickets)  # fMP4 for other nodes' pages

    @classmethod
    def build(cls, config: AppConfig, redactor: Redactor | None = None) -> Node:
        catalog = Catalog.from_config(config)
        redactor = redactor or Redactor()
        redactor.add(catalog.secrets())
        # Cameras added while the node runs may carry credentials too.
        catalog.on_change(
            lambda change: redactor.add(camera_secrets(change.added + change.updated))
        )
        redactor.add(database_secrets(config))
        ingest = IngestService(catalog, config.ingest, redactor)
        snapshots = SnapshotService(ingest)
        # One database for the node: cases and wall layouts share its engine and its
        # migrations (run in start()).
        engine = create_db_engine(database_url(config))
        cluster_store = membership = ownership = notifier = remote_health = None
        if config.cluster.enabled and config.cluster.node_id is not None:
            cluster_store = ClusterStore(engine)
            membership = Membership(cluster_store, config.cluster, lambda: load())
            ownership = Ownership(cluster_store, membership, catalog, ingest, config.cluster)
            notifier = Notifier(database_url(config), config.cluster.node_id)
            remote_health = RemoteHealth(cluster_store, notifier, ingest, ownership.owner)
            # Another node's camera is never connected here; its health is its owner's word.
            # Writers ask holds(); the ingest reads on through a shared database outage.
            ingest.set_ownership(
                ownership.holds, remote_health.health, ownership.owner, ownership.reads
            )
        # Writes for a camera are fenced by its lease in cluster mode (None: unchecked).
        fence = ownership.fence if ownership is not None else None
        node_id = config.cluster.node_id if config.cluster.enabled else None
        wall = WallStore(engine)
        auth = config.auth
        policy = SessionPolicy(
            idle_s=auth.session_idle_minutes * 60, max_s=auth.session_max_hours * 3600
        )
        auth_store = AuthStore(engine, policy)
        audit = AuditLog(engine)
        recordings = RecordingStore(engine, fence)
        recorder = RecorderService(
            catalog, ingest, recordings, config, on_removed=_audit_removals(audit)
        )
        recorded = RecordingsService(recordings, recorder, catalog, config.recording, audit)
        limits = config.limits
        exports = ExportBudget(
            config.server.data_dir / SCRATCH_DIR, limits.exports_per_user, limits.exports
        )
        # Clips older than the live ring come from the recordings.
        footage = LiveFootage(catalog, ingest, snapshots, recorded, exports)
        # Cases are assigned to people with an account here; the case layer asks this.
        cases = build_case_service(
            config, engine, footage, lambda name: auth_store.user(name) is not None
        )
        # Archiving a case lets go of the footage it held back from retention.
        cases.on_archived(recorded.release_case)
        cases.live_fence = fence
        access = Access(catalog, cases)
        # One set of WebRTC viewers for live tiles and mosaics: the caps on viewers waiting
        # to connect are per user and per node, whatever they watch.
        peers = PeerSessions(
            connect_deadline_s=limits.peer_connect_deadline_s,
            max_pending=limits.pending_peers,
            max_pending_per_owner=limits.pending_peers_per_user,
        )
        mosaic = MosaicService(ingest, catalog, wall, peers=peers, max_renderers=limits.mosaics)
        events = EventBus(
            EventStore(engine, node_id, fence),
            catalog,
            config.events,
            audit,
            limits.event_streams_per_user,
        )
        live = LiveService(ingest, mosaic, peers)
        if ownership is not None:

            def taken_over(node_id: str, camera_ids: Sequence[str]) -> None:
                """A dead node's cameras: its recordings' leftovers closed, its events
                of them ended (each whatever the other's outcome)."""
                try:
                    recorder.taken_over(camera_ids)
                finally:
                    events.end_node_events(node_id, camera_ids)

            ownership.on_takeover = taken_over

        def load() -> dict[str, float]:
            """This node's figures for the others (cluster mode's heartbeat): cameras held,
            leased or pinned (its GB channels)."""
            return {
                "cameras": sum(1 for camera_id in catalog.cameras if ingest.holds(camera_id)),
                "viewers": live.viewers,
                "streams": ingest.running_streams(),
            }

        zones = ZoneStore(engine)
        shelf = ClipShelf(
            config.shared_root() / CLIP_DIR,
            AlarmClips.max_bytes(config.events),
            shared=config.cluster.enabled,
        )
        alarm_clips = AlarmClips(shelf, events, ingest, catalog, recorded, config.events)
        clip_s = (config.events.alarm_clip_pre_s, config.events.alarm_clip_post_s)
        gb = build_gb_registry(config.gb28181, catalog, ingest, engine, redactor)
        gb_control = GbControl(config.gb28181, gb, catalog, events)
        if gb is not None:
            gb.on_alarm = gb_control.on_alarm
        ptz = PtzControl(
            config.ptz,
            PtzDrivers(gb_control, _gb_ptz_type(gb), config.onvif.request_timeout_s),
            PtzLeaseStore(engine),
            audit,
            ingest,
            catalog,
        )
        live_views = LiveViews(access, limits)
        health_events = HealthEvents(ingest, limits.event_streams_per_user)
        health_publisher = None
        if notifier is not None and cluster_store is not None and ownership is not None:
            relay_events(events, notifier)
            health_publisher = HealthPublisher(cluster_store, notifier, ingest, ownership.token)
        revocations = SessionRevocations(live_views, (events, health_events), notifier)
        # ONVIF cameras' clocks and events, read by the node that holds each; their state is
        # shown with the camera's health (the owner's word on the other nodes).
        clocks = CameraClocks(catalog, ingest.holds, events, config.onvif, ingest.notify_health)
        onvif_events = OnvifEvents(
            catalog, ingest.holds, events, config.onvif, ingest.notify_health
        )
        device_health = node_device_health(
            ingest.holds,
            local_device_health(clocks, onvif_events),
            remote_health.device if remote_health is not None else None,
        )
        ingest.set_device_health(device_health)
        cases.camera_clock = lambda camera_id: device_health(camera_id).clock_offset_s
        auth_store.on_access_changed(revocations.changed)
        return cls(
            config=config,
            catalog=catalog,
            redactor=redactor,
            engine=engine,
            ingest=ingest,
            snapshots=snapshots,
            live=live,
            footage=footage,
            cases=cases,
            wall=wall,
            mosaic=mosaic,
            auth=auth_store,
            audit=audit,
            sign_in_limiter=build_sign_in_limiter(
                engine,
                auth.sign_in_max_failures,
                auth.sign_in_window_s,
                shared=config.cluster.enabled,
            ),
            access=access,
            live_views=live_views,
            health_events=health_events,
            recordings=recordings,
            recorder=recorder,
            recorded=recorded,
            exports=exports,
            events=events,
            health_alarms=HealthAlarms(ingest, events, config.events),
            diagnosis=DiagnosisService(
                ingest, catalog, events, ReferenceStore(engine), config.events.diagnosis
            ),
            zones=zones,
            zone_motion=ZoneMotionService(
                ingest, catalog, zones, events, config.events.zones, config.events.offline_after_s
            ),
            alarm_clips=alarm_clips,
            alarm_cases=AlarmCases(events, cases, footage, ingest, catalog, alarm_clips, clip_s),
            heartbeat=NodeHeartbeat(events, node_id=node_id),
            availability=AvailabilityService(events),
            gb=gb,
            gb_player=build_gb_player(config.gb28181, gb, ingest, redactor),
            gb_control=gb_control,
            ptz=ptz,
            revocations=revocations,
            clocks=clocks,
            onvif_events=onvif_events,
            discovery=DiscoveryService(config.onvif, catalog),
            notifier=notifier,
            remote_health=remote_health,
            health_publisher=health_publisher,
            cluster_store=cluster_store,
            membership=membership,
            ownership=ownership,
        )

    async def start(self) -> None:
        data_dir = self.config.server.data_dir
        data_dir.mkdir(mode=DATA_DIR_MODE, parents=True, exist_ok=True)
        if data_dir.stat().st_mode & 0o777 != DATA_DIR_MODE:
            data_dir.chmod(DATA_DIR_MODE)  # a node made before this, or a mkdir by hand
        # Schema migrations and evidence-store clean-up, before anything else runs on the
        # loop; in place, not in a worker thread that would then idle for the node's life.
        upgrade(self.engine)
        await self._join_cluster()
        self.exports.prepare()  # empties what a node stopped mid-export left behind
        # Before the ingest, decoder and encoder threads: memory freed after a load goes
        # back to the system instead of staying in per-thread arenas (media/memory.py).
        limit_malloc_arenas()
        self.audit.start()
        self.cases.open()
        if self.gb is not None:  # stored GB channels are cameras before the bus looks
            await self.gb.load()
        # Before anything raises events: ends what a stopped node left active.
        await self.events.start()
        await self.alarm_clips.start()  # follows the bus before anything raises alarms
        await self.heartbeat.start()  # after the bus has ended a crashed run's events
        await self.health_alarms.start()
        self.diagnosis.start()  # subscribes before the ingest sends its first packets
        await self.health_events.start()  # before the ingest: its first changes are news
        await self.ingest.start()
        if self.gb is not None:  # after the ingest: its channels' cameras get streams
            await self.gb.start()
        if self.gb_player is not None:
            await self.gb_player.start()
        await self.recorder.start()  # reconciles the recordings, then subscribes
        await self.mosaic.start()
        await self.zone_motion.start()  # after the ingest and the bus: it decodes, it raises
        await self.clocks.start()  # after the bus (camera.clock) and the ownership
        await self.onvif_events.start()
        await self.live_views.start()
        await self.ptz.start()  # cameras steered before a restart still go home
        await self.revocations.start()
        if self.notifier is not None:  # its first connection reloads what others published
            await self.notifier.start()
        if self.health_publisher is not None:
            await self.health_publisher.start()

    async def stop(self) -> None:
        self.revocations.stop()
        await self.discovery.stop()
        if self.health_publisher is not None:
            await self.health_publisher.stop()
        await self.zone_motion.stop()  # ends its alarms while the bus still takes them
        await self.onvif_events.stop()  # unsubscribes, ends its events while the bus takes them
        await self.clocks.stop()
        await self.live_views.close_all()
        await self.mosaic.close()
        await self.live.close()
        await self.ptz.stop()  # moving cameras stop, while the ingest and audit still run
        self.footage.close()
        self.alarm_clips.stop()  # clips being collected end with the ingest's streams
        self.snapshots.close()
        # Before the streams stop: what the node does to its own streams is no camera
        # failure to raise (it raises nothing new from here on, it still ends events).
        await self.health_alarms.stop()
        await self.recorder.stop()  # closes its segments while their packets still come
        await asyncio.to_thread(self.diagnosis.stop)  # before the bus it raises events on
        if self.ownership is not None:  # its cameras' ingest stops, then their leases go
            await self.ownership.stop()
        await self.ingest.stop()  # its GB workers close their plays: BYEs under way
        if self.gb_player is not None:  # BYE every play left, while the SIP transport runs
            await self.gb_player.stop()
        if self.gb is not None:
            await self.gb.stop()
        await self.gb_control.stop()  # ends its device alarms while the bus takes them
        await self.heartbeat.stop()  # the run's end, while the bus still takes it
        self.events.stop()
        if self.notifier is not None:  # after the bus: the events ended above reach the others
            await self.notifier.stop()
        if self.remote_health is not None:
            await self.remote_health.stop()
        self.health_events.stop()
        await self.forwarder.close()
        self.audit.close()
        if self.membership is not None:  # last: the others take over at once
            await self.membership.stop()
        self.engine.dispose()

    async def _join_cluster(self) -> None:
        """Cluster mode: join (before anything writes under this node's id: its events'
        leftovers are ended by it), then the first lease round, before the ingest starts,
        so the node never connects a camera it does not hold."""
        if self.membership is None or self.ownership is None:
            return
        try:
            await self.membership.start()
        except NodeIdTaken as taken:
            log.critical("node not started: %s", taken)
            raise
        await self.ownership.start()


def _gb_ptz_type(gb: GbRegistry | None) -> Callable[[str], int | None]:
    """A GB/T 28181 channel camera's catalog PTZType (None: not said, or no such channel)."""

    def ptz_type(camera_id: str) -> int | None:
        found = gb.cameras.channel(camera_id) if gb is not None else None
        return None if found is None else found[1].ptz_type

    return ptz_type


def _audit_removals(audit: AuditLog) -> Callable[[Sequence[SegmentRecord], str], None]:
    """Retention's removals into the audit log: one entry per camera and pass."""

    def record(segments: Sequence[SegmentRecord], reason: str) -> None:
        gone = FILE_ALREADY_GONE in reason
        by_camera: dict[str, list[SegmentRecord]] = {}
        for segment in segments:
            by_camera.setdefault(segment.camera_id, []).append(segment)
        for camera_id, removed in by_camera.items():
            audit.record(
                AuditEntry(
                    user=RETENTION_ACTOR,
                    action=AuditAction.RECORDINGS_DELETE,
                    camera_id=camera_id,
                    detail={
                        "reason": reason,
                        "segments": len(removed),
                        # Bytes freed: none when the files were already gone.
                        "bytes": 0 if gone else sum(s.bytes for s in removed),
                        "from": iso(min(s.start_at for s in removed)),
                        "to": iso(max(s.end_at or s.start_at for s in removed)),
                    },
                    actor_is_user=False,
                )
            )

    return record
