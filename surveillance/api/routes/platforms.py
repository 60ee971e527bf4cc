"""Platforms and the node's health roll-up."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Request

from surveillance import __version__
from surveillance.api.deps import AccessDep, CatalogDep, IngestDep, StartedAtDep
from surveillance.api.guards import public, requires
from surveillance.api.routes.cluster import database_state
from surveillance.api.schemas.cameras import HealthOut, PlatformOut
from surveillance.auth.principal import Principal
from surveillance.auth.roles import Permission
from surveillance.media.health import StreamState

router = APIRouter(prefix="/api", tags=["platforms"])


@router.get("/platforms", response_model=list[PlatformOut], summary="Platforms with health")
def list_platforms(
    catalog: CatalogDep,
    ingest: IngestDep,
    access: AccessDep,
    principal: Annotated[Principal, requires(Permission.LIVE_VIEW)],
) -> list[PlatformOut]:
    visible = access.camera_filter(principal)
    show_urls = access.sees_stream_urls(principal)
    return [
        PlatformOut.of(catalog.platforms.get(rollup.platform_id), rollup, show_urls=show_urls)
        for rollup in ingest.platform_health(visible=visible)
    ]


@router.get("/health", response_model=HealthOut, summary="Node health", dependencies=[public()])
def health(request: Request, ingest: IngestDep, started_at: StartedAtDep) -> HealthOut:
    """Public, for load balancers and monitors: counts only, no camera or platform names."""
    rollups = ingest.platform_health()
    by_state: dict[str, int] = {state.value: 0 for state in StreamState}
    for rollup in rollups:
        for state, count in rollup.by_state.items():
            by_state[state] += count
    # The roll-up's rule: idle GB channels a live platform can play count as available.
    available = sum(rollup.available for rollup in rollups)
    expected = sum(rollup.expected for rollup in rollups)
    clocks_flagged = sum(1 for camera in ingest.all_health() if camera.device.clock_flagged)
    database = database_state(request)
    return HealthOut(
        status="ok" if available == expected and database != "unreachable" else "degraded",
        version=__version__,
        uptime_s=round(time.time() - started_at, 1),
        cameras_total=sum(by_state.values()),
        cameras_online=by_state["online"],
        by_state=by_state,
        clocks_flagged=clocks_flagged,
        database=database,
    )
