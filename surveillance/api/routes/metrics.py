"""The Prometheus scrape endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from surveillance.api.deps import (
    DiagnosisDep,
    EventBusDep,
    GbDep,
    IngestDep,
    RecorderDep,
    ZoneMotionDep,
)
from surveillance.api.guards import requires
from surveillance.api.metrics import build_registry
from surveillance.auth.roles import Permission

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics",
    dependencies=[requires(Permission.SYSTEM_READ)],
)
def metrics(
    ingest: IngestDep,
    recorder: RecorderDep,
    events: EventBusDep,
    diagnosis: DiagnosisDep,
    zone_motion: ZoneMotionDep,
    gb: GbDep,
) -> Response:
    registry = build_registry(
        ingest, recorder, events=events, diagnosis=diagnosis, zone_motion=zone_motion, gb=gb
    )
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
