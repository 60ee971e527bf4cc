"""Platforms and the node's health roll-up."""

from __future__ import annotations

import time

from fastapi import APIRouter

from surveillance import __version__
from surveillance.api.deps import NodeDep
from surveillance.api.schemas import HealthOut, PlatformOut
from surveillance.media.health import StreamState

router = APIRouter(prefix="/api", tags=["platforms"])


@router.get("/platforms", response_model=list[PlatformOut], summary="Platforms with health")
def list_platforms(node: NodeDep) -> list[PlatformOut]:
    return [
        PlatformOut.of(node.catalog.platforms.get(rollup.platform_id), rollup)
        for rollup in node.ingest.platform_health()
    ]


@router.get("/health", response_model=HealthOut, summary="Node health (public)")
def health(node: NodeDep) -> HealthOut:
    rollups = node.ingest.platform_health()
    by_state: dict[str, int] = {state.value: 0 for state in StreamState}
    for rollup in rollups:
        for state, count in rollup.by_state.items():
            by_state[state] += count
    expected = sum(by_state.values()) - by_state["disabled"] - by_state["idle"]
    return HealthOut(
        status="ok" if by_state["online"] == expected else "degraded",
        version=__version__,
        uptime_s=round(time.time() - node.started_at, 1),
        cameras_total=sum(by_state.values()),
        cameras_online=by_state["online"],
        by_state=by_state,
        platforms=[PlatformOut.of(node.catalog.platforms.get(r.platform_id), r) for r in rollups],
    )
