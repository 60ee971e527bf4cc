"""Cameras: the catalog with live health, filters, health events, and live snapshots."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from surveillance.api.deps import (
    AccessDep,
    AuditDep,
    Auditor,
    CatalogDep,
    HealthEventsDep,
    IngestDep,
    PtzDep,
    RecordingsDep,
    SnapshotsDep,
)
from surveillance.api.forward import owner_only, to_owner
from surveillance.api.guards import authenticate, requires
from surveillance.api.schemas.cameras import CameraOut, TagOut, UnavailableOut
from surveillance.api.sse import event_stream_response
from surveillance.auth.audit import AuditAction
from surveillance.auth.principal import Principal
from surveillance.auth.roles import Permission
from surveillance.catalog import Camera, Catalog
from surveillance.errors import CameraNotFound, CameraUnavailable, Forbidden, SurveillanceError
from surveillance.services.access import Access
from surveillance.services.footage_times import iso, parse_moment
from surveillance.services.ingest import IngestService
from surveillance.services.recordings import RecordingsService
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
    recorded: RecordingsDep,
    access: AccessDep,
    ptz: PtzDep,
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
    return _visible(cameras, ingest, recorded, access, principal, ptz.steerable, set(_split(state)))


def _visible(
    cameras: list[Camera],
    ingest: IngestService,
    recorded: RecordingsService,
    access: Access,
    principal: Principal,
    steerable: Callable[[Camera], bool],
    wanted_states: set[str] | None = None,
) -> list[CameraOut]:
    """Those of ``cameras`` ``principal`` may see, with their health, as they may see them."""
    show_url = access.sees_stream_urls(principal)
    result = []
    for camera in access.cameras(principal, cameras):
        try:
            health = ingest.camera_health(camera.id)
            recording = recorded.status(camera.id)
        except CameraNotFound:
            continue  # removed from the catalog while the list was made
        if wanted_states and health.state.value not in wanted_states:
            continue
        result.append(
            CameraOut.of(
                camera, health, show_url=show_url, recording=recording, ptz=steerable(camera)
            )
        )
    return result


@router.get(
    "/cameras/events",
    summary="Camera health as it changes (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "`event: snapshot` with the list GET /api/cameras gives, then "
            "`event: camera` with one camera whenever its main or sub stream's health "
            "changes (at most one per camera per 250 ms, the newest state always sent), and "
            "`: keepalive` every 15 s. Ends when the session or token no longer allows it.",
        },
        429: {"description": "The user follows as many event streams as allowed"},
    },
)
async def camera_events(
    request: Request,
    catalog: CatalogDep,
    ingest: IngestDep,
    recorded: RecordingsDep,
    access: AccessDep,
    events: HealthEventsDep,
    ptz: PtzDep,
    principal: Viewer,
) -> StreamingResponse:
    feed = events.subscribe(principal.user.id)  # 429 past the user's limit
    source = _CameraHealthSource(catalog, ingest, recorded, access, ptz.steerable)
    recheck = functools.partial(authenticate, request)
    return event_stream_response(
        feed, events.unsubscribe, recheck, principal, Permission.LIVE_VIEW, source
    )


class _CameraHealthSource:
    """What the camera health stream sends: cameras in scope, with their health, as their
    user may see them (stream URLs for admins only). The catalog is read each time: cameras
    added or removed while the node runs change the view, and the next look at it (at the
    credential's re-check) sends a fresh snapshot."""

    def __init__(
        self,
        catalog: Catalog,
        ingest: IngestService,
        recorded: RecordingsService,
        access: Access,
        steerable: Callable[[Camera], bool],
    ) -> None:
        self._catalog = catalog
        self._ingest = ingest
        self._recorded = recorded
        self._access = access
        self._steerable = steerable

    async def view(self, principal: Principal) -> tuple[frozenset[str], bool]:
        """Which cameras, and whether with URLs."""
        visible = self._access.cameras(principal, self._catalog.select())
        return frozenset(c.id for c in visible), self._access.sees_stream_urls(principal)

    async def snapshot(self, principal: Principal) -> tuple[str, tuple[frozenset[str], bool]]:
        cameras = self._catalog.select()
        shown = _visible(
            cameras, self._ingest, self._recorded, self._access, principal, self._steerable
        )
        payload = ",".join(camera.model_dump_json() for camera in shown)
        view = (frozenset(c.id for c in shown), self._access.sees_stream_urls(principal))
        return f"event: snapshot\ndata: [{payload}]\n\n", view

    async def changes(self, principal: Principal, keys: set[str]) -> list[str]:
        show_url = self._access.sees_stream_urls(principal)
        texts = []
        for camera_id in sorted(keys):
            if not self._access.sees_camera(principal, camera_id):
                continue
            camera = self._catalog.camera(camera_id)
            try:
                health = self._ingest.camera_health(camera_id)
                recording = self._recorded.status(camera_id)
            except CameraNotFound:
                camera = None
            if camera is None:
                continue  # removed: the next snapshot leaves it out
            out = CameraOut.of(
                camera,
                health,
                show_url=show_url,
                recording=recording,
                ptz=self._steerable(camera),
            )
            texts.append(f"event: camera\ndata: {out.model_dump_json()}\n\n")
        return texts


@router.get("/cameras/{camera_id}", response_model=CameraOut, summary="One camera with health")
def get_camera(
    camera_id: str,
    ingest: IngestDep,
    recorded: RecordingsDep,
    access: AccessDep,
    ptz: PtzDep,
    principal: Viewer,
) -> CameraOut:
    camera = access.camera(principal, camera_id)
    show_url = access.sees_stream_urls(principal)
    health, recording = ingest.camera_health(camera_id), recorded.status(camera_id)
    return CameraOut.of(
        camera, health, show_url=show_url, recording=recording, ptz=ptz.steerable(camera)
    )


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
    request: Request,
    camera_id: str,
    snapshots: SnapshotsDep,
    recorded: RecordingsDep,
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
    at: Annotated[
        str | None,
        Query(
            max_length=64,
            description="A past moment, ISO 8601 with a time zone: the "
            "recorded picture shown then (needs recordings.view)",
        ),
    ] = None,
) -> Response:
    access.camera(principal, camera_id)
    moment = None if at is None else parse_moment("at", at)
    if owner_only(request, moment):  # live, or in the segment being written
        forwarded = await to_owner(request, camera_id)
        if forwarded is not None:
            return forwarded
    if at is not None:
        return await _recorded_snapshot(camera_id, at, recorded, audit, principal)
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


async def _recorded_snapshot(
    camera_id: str, at: str, recorded: RecordingsService, audit: Auditor, principal: Principal
) -> Response:
    """The recorded picture shown at ``at``: the past is ``recordings.view``'s, not only
    ``snapshot.take``'s (a viewer of the live wall may not look back)."""
    if not principal.can(Permission.RECORDINGS_VIEW):
        audit(
            principal.name,
            AuditAction.ACCESS_DENIED,
            camera_id=camera_id,
            outcome="denied",
            missing=[Permission.RECORDINGS_VIEW.value],
        )
        raise Forbidden("your role may not do this (needs recordings.view)")
    moment = await asyncio.to_thread(recorded.checked_moment, camera_id, parse_moment("at", at))
    try:
        frame = await asyncio.to_thread(recorded.frame, camera_id, moment)
    except SurveillanceError as exc:
        audit(
            principal.name,
            AuditAction.SNAPSHOT,
            camera_id=camera_id,
            outcome="failed",
            at=iso(moment),
            status=exc.status_code,
        )
        raise
    audit(principal.name, AuditAction.SNAPSHOT, camera_id=camera_id, at=iso(moment))
    return Response(
        frame.jpeg,
        media_type="image/jpeg",
        headers={
            "Cache-Control": "no-store",
            "X-Captured-At": iso(frame.at),
            "X-Snapshot-Mode": "recorded",
        },
    )
