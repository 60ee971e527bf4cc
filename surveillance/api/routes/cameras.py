"""Cameras: the catalog with live health, filters, and live snapshots."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from surveillance.api.deps import AccessDep, AuditDep, CatalogDep, IngestDep, SnapshotsDep
from surveillance.api.guards import requires
from surveillance.api.schemas.cameras import CameraOut, TagOut, UnavailableOut
from surveillance.auth.audit import AuditAction
from surveillance.auth.principal import Principal
from surveillance.auth.roles import Permission
from surveillance.errors import CameraUnavailable
from surveillance.services.snapshots import SnapshotMode

router = APIRouter(prefix="/api", tags=["cameras"])

Viewer = Annotated[Principal, requires(Permission.LIVE_VIEW)]

MAX_SNAPSHOT_WIDTH = 7680


def _split(values: list[str] | None) -> list[str]:
    """Accept both repeated parameters and comma-separated lists."""
    out: list[str] = []
    for value in values or []:
        out.extend(part.strip() for part in value.split(",") if part.strip())
    return out


@router.get("/cameras", response_model=list[CameraOut], summary="List cameras with health")
def list_cameras(
    catalog: CatalogDep,
    ingest: IngestDep,
    access: AccessDep,
    principal: Viewer,
    platform: Annotated[str | None, Query(description="Only this platform's cameras")] = None,
    tags_all: Annotated[
        list[str] | None, Query(description="Cameras carrying every one of these tags")
    ] = None,
    tags_any: Annotated[
        list[str] | None, Query(description="Cameras carrying at least one of these tags")
    ] = None,
    state: Annotated[
        list[str] | None, Query(description="Only cameras in these states (e.g. offline)")
    ] = None,
    q: Annotated[str | None, Query(max_length=200, description="Text in name or id")] = None,
) -> list[CameraOut]:
    cameras = catalog.select(
        platform=platform, tags_all=_split(tags_all), tags_any=_split(tags_any), text=q
    )
    wanted_states = set(_split(state))
    show_url = access.sees_stream_urls(principal)
    result = []
    for camera in access.cameras(principal, cameras):
        health = ingest.camera_health(camera.id)
        if wanted_states and health.state.value not in wanted_states:
            continue
        result.append(CameraOut.of(camera, health, show_url=show_url))
    return result


@router.get("/cameras/{camera_id}", response_model=CameraOut, summary="One camera with health")
def get_camera(
    camera_id: str, ingest: IngestDep, access: AccessDep, principal: Viewer
) -> CameraOut:
    camera = access.camera(principal, camera_id)
    show_url = access.sees_stream_urls(principal)
    return CameraOut.of(camera, ingest.camera_health(camera_id), show_url=show_url)


@router.get("/tags", response_model=list[TagOut], summary="Zone tags, built-in and declared")
def list_tags(catalog: CatalogDep, principal: Viewer) -> list[TagOut]:
    return [TagOut.model_validate(tag) for tag in catalog.tags.values()]


@router.get(
    "/cameras/{camera_id}/snapshot.jpg",
    summary="The camera's current picture as JPEG",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "The live picture"},
        404: {"description": "Unknown camera"},
        503: {"model": UnavailableOut, "description": "The camera has no live picture now"},
    },
)
async def snapshot(
    camera_id: str,
    snapshots: SnapshotsDep,
    access: AccessDep,
    audit: AuditDep,
    principal: Annotated[Principal, requires(Permission.SNAPSHOT_TAKE)],
    mode: Annotated[
        SnapshotMode,
        Query(description="latest: the newest packet's picture; keyframe: newest keyframe"),
    ] = SnapshotMode.LATEST,
    width: Annotated[
        int | None, Query(ge=16, le=MAX_SNAPSHOT_WIDTH, description="Scale down to this width")
    ] = None,
    stream: Annotated[str, Query(pattern="^(main|sub)$", description="main or sub")] = "main",
) -> Response:
    access.camera(principal, camera_id)
    try:
        shot = await snapshots.snapshot(camera_id, mode=mode, width=width, sub=stream == "sub")
    except CameraUnavailable:
        # Recorded, then answered like any error (503 with the camera's state and reason).
        audit(principal.name, AuditAction.SNAPSHOT, camera_id=camera_id, outcome="unavailable")
        raise
    audit(principal.name, AuditAction.SNAPSHOT, camera_id=camera_id, stream=stream)
    return Response(
        shot.jpeg,
        media_type="image/jpeg",
        headers={
            "Cache-Control": "no-store",
            "X-Captured-At": shot.captured_at_iso,
            "X-Frame-Age-Ms": str(round(shot.age_s * 1000)),
            "X-Snapshot-Mode": shot.mode.value,
        },
    )
