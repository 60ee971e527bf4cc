"""Request dependencies: each route takes the service it needs, typed, and nothing else.

Who is asking, and whether they may use the route, is decided by the route's guard
(``guards.py``); what they may see or change, by the access service (``AccessDep``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, cast

from fastapi import Depends
from starlette.requests import HTTPConnection

from surveillance.api.node import Node
from surveillance.auth.audit import AuditAction, AuditEntry, AuditLog
from surveillance.auth.ratelimit import AttemptLimiter
from surveillance.auth.store import AuthStore
from surveillance.cases.service import CaseService
from surveillance.catalog import Catalog
from surveillance.services.access import Access
from surveillance.services.alarm_cases import AlarmCases
from surveillance.services.alarm_clips import AlarmClips
from surveillance.services.availability import AvailabilityService
from surveillance.services.diagnosis import DiagnosisService
from surveillance.services.event_bus import EventBus
from surveillance.services.export_budget import ExportBudget
from surveillance.services.gb_control import GbControl
from surveillance.services.gb_registry import GbRegistry
from surveillance.services.health_events import HealthEvents
from surveillance.services.ingest import IngestService
from surveillance.services.live import LiveService
from surveillance.services.live_sessions import LiveViews
from surveillance.services.mosaic import MosaicService
from surveillance.services.onvif_discovery import DiscoveryService
from surveillance.services.ptz_control import PtzControl
from surveillance.services.recorder import RecorderService
from surveillance.services.recordings import RecordingsService
from surveillance.services.snapshots import SnapshotService
from surveillance.services.zone_motion import ZoneMotionService
from surveillance.wall.store import WallStore
from surveillance.zones.store import ZoneStore


def node_of(connection: HTTPConnection) -> Node:
    return cast(Node, connection.app.state.node)


def client_address(connection: HTTPConnection) -> str:
    return connection.client.host if connection.client else "unknown"


@dataclass(frozen=True)
class Auditor:
    """The audit log, bound to one request's client address."""

    log: AuditLog
    client: str

    def __call__(
        self,
        user: str,
        action: AuditAction,
        *,
        camera_id: str | None = None,
        outcome: str = "ok",
        **detail: Any,
    ) -> None:
        entry = AuditEntry(
            user=user,
            action=action,
            camera_id=camera_id,
            client=self.client,
            outcome=outcome,
            detail=detail,
        )
        self.log.record(entry)


def auditor(connection: HTTPConnection) -> Auditor:
    return Auditor(node_of(connection).audit, client_address(connection))


async def _auditor(connection: HTTPConnection) -> Auditor:
    return auditor(connection)


# One small function per service, so each dependency is typed end to end; async, so
# FastAPI calls them on the loop instead of handing each to a worker thread.
async def _access(connection: HTTPConnection) -> Access:
    return node_of(connection).access


async def _alarm_cases(connection: HTTPConnection) -> AlarmCases:
    return node_of(connection).alarm_cases


async def _alarm_clips(connection: HTTPConnection) -> AlarmClips:
    return node_of(connection).alarm_clips


async def _availability(connection: HTTPConnection) -> AvailabilityService:
    return node_of(connection).availability


async def _auth(connection: HTTPConnection) -> AuthStore:
    return node_of(connection).auth


async def _audit_log(connection: HTTPConnection) -> AuditLog:
    return node_of(connection).audit


async def _cases(connection: HTTPConnection) -> CaseService:
    return node_of(connection).cases


async def _catalog(connection: HTTPConnection) -> Catalog:
    return node_of(connection).catalog


async def _ingest(connection: HTTPConnection) -> IngestService:
    return node_of(connection).ingest


async def _limiter(connection: HTTPConnection) -> AttemptLimiter:
    return node_of(connection).sign_in_limiter


async def _live(connection: HTTPConnection) -> LiveService:
    return node_of(connection).live


async def _event_bus(connection: HTTPConnection) -> EventBus:
    return node_of(connection).events


async def _gb_control(connection: HTTPConnection) -> GbControl:
    return node_of(connection).gb_control


async def _ptz(connection: HTTPConnection) -> PtzControl:
    return node_of(connection).ptz


async def _discovery(connection: HTTPConnection) -> DiscoveryService:
    return node_of(connection).discovery


async def _health_events(connection: HTTPConnection) -> HealthEvents:
    return node_of(connection).health_events


async def _live_views(connection: HTTPConnection) -> LiveViews:
    return node_of(connection).live_views


async def _mosaic(connection: HTTPConnection) -> MosaicService:
    return node_of(connection).mosaic


async def _recorder(connection: HTTPConnection) -> RecorderService:
    return node_of(connection).recorder


async def _exports(connection: HTTPConnection) -> ExportBudget:
    return node_of(connection).exports


async def _recorded(connection: HTTPConnection) -> RecordingsService:
    return node_of(connection).recorded


async def _snapshots(connection: HTTPConnection) -> SnapshotService:
    return node_of(connection).snapshots


async def _wall(connection: HTTPConnection) -> WallStore:
    return node_of(connection).wall


async def _diagnosis(connection: HTTPConnection) -> DiagnosisService:
    return node_of(connection).diagnosis


async def _zones(connection: HTTPConnection) -> ZoneStore:
    return node_of(connection).zones


async def _zone_motion(connection: HTTPConnection) -> ZoneMotionService:
    return node_of(connection).zone_motion


async def _gb(connection: HTTPConnection) -> GbRegistry | None:
    return node_of(connection).gb  # None: the SIP server is not enabled


async def _started_at(connection: HTTPConnection) -> float:
    return node_of(connection).started_at


AccessDep = Annotated[Access, Depends(_access)]
AlarmCasesDep = Annotated[AlarmCases, Depends(_alarm_cases)]
AlarmClipsDep = Annotated[AlarmClips, Depends(_alarm_clips)]
AvailabilityDep = Annotated[AvailabilityService, Depends(_availability)]
AuditDep = Annotated[Auditor, Depends(_auditor)]
AuditLogDep = Annotated[AuditLog, Depends(_audit_log)]
AuthDep = Annotated[AuthStore, Depends(_auth)]
CasesDep = Annotated[CaseService, Depends(_cases)]
CatalogDep = Annotated[Catalog, Depends(_catalog)]
EventBusDep = Annotated[EventBus, Depends(_event_bus)]
DiagnosisDep = Annotated[DiagnosisService, Depends(_diagnosis)]
GbControlDep = Annotated[GbControl, Depends(_gb_control)]
PtzDep = Annotated[PtzControl, Depends(_ptz)]
DiscoveryDep = Annotated[DiscoveryService, Depends(_discovery)]
HealthEventsDep = Annotated[HealthEvents, Depends(_health_events)]
IngestDep = Annotated[IngestService, Depends(_ingest)]
LimiterDep = Annotated[AttemptLimiter, Depends(_limiter)]
LiveDep = Annotated[LiveService, Depends(_live)]
LiveViewsDep = Annotated[LiveViews, Depends(_live_views)]
MosaicDep = Annotated[MosaicService, Depends(_mosaic)]
RecorderDep = Annotated[RecorderService, Depends(_recorder)]
RecordingsDep = Annotated[RecordingsService, Depends(_recorded)]
ExportsDep = Annotated[ExportBudget, Depends(_exports)]
GbDep = Annotated[GbRegistry | None, Depends(_gb)]
SnapshotsDep = Annotated[SnapshotService, Depends(_snapshots)]
WallDep = Annotated[WallStore, Depends(_wall)]
ZonesDep = Annotated[ZoneStore, Depends(_zones)]
ZoneMotionDep = Annotated[ZoneMotionService, Depends(_zone_motion)]
StartedAtDep = Annotated[float, Depends(_started_at)]  # the node's start, Unix seconds
