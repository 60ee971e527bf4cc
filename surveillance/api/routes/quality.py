"""Video-quality diagnosis of one camera: its state, and its reference picture (one click)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Annotated

from fastapi import APIRouter, Request, Response

from surveillance.api.deps import AccessDep, AuditDep, DiagnosisDep
from surveillance.api.forward import to_owner
from surveillance.api.guards import requires
from surveillance.api.schemas.cameras import UnavailableOut
from surveillance.api.schemas.quality import (
    CheckOut,
    FiguresOut,
    PacketFiguresOut,
    QualityOut,
    ReferenceOut,
)
from surveillance.auth.audit import AuditAction
from surveillance.auth.principal import Principal
from surveillance.auth.roles import Permission
from surveillance.events.references import NoReference, Reference
from surveillance.services.camera_quality import QualityCheck
from surveillance.services.diagnosis import DiagnosisService

router = APIRouter(prefix="/api", tags=["quality"])

Viewer = Annotated[Principal, requires(Permission.EVENTS_VIEW)]
# Setting what a camera should look at silences (or raises) its moved event: an operator's
# act, like acknowledging, on a picture they took.
Operator = Annotated[Principal, requires(Permission.SNAPSHOT_TAKE, Permission.EVENTS_ACK)]


@router.get(
    "/cameras/{camera_id}/quality",
    response_model=QualityOut,
    summary="The camera's video-quality checks, their last figures and its reference",
    responses={404: {"description": "Unknown camera"}},
)
async def quality(
    request: Request, camera_id: str, diagnosis: DiagnosisDep, access: AccessDep, principal: Viewer
) -> QualityOut | Response:
    camera = access.camera(principal, camera_id)
    forwarded = await to_owner(request, camera_id)  # the checks run where the camera is read
    if forwarded is not None:
        return forwarded
    reference = await asyncio.to_thread(diagnosis.reference, camera.id)
    return _quality_out(diagnosis, camera.id, reference)


@router.post(
    "/cameras/{camera_id}/reference",
    response_model=ReferenceOut,
    status_code=201,
    summary="Take the camera's current picture as its reference view",
    responses={
        404: {"description": "Unknown camera"},
        503: {"model": UnavailableOut, "description": "The camera has no picture now"},
    },
)
async def set_reference(
    request: Request,
    camera_id: str,
    diagnosis: DiagnosisDep,
    access: AccessDep,
    audit: AuditDep,
    principal: Operator,
) -> ReferenceOut | Response:
    camera = access.camera(principal, camera_id)
    forwarded = await to_owner(request, camera_id)  # its picture is in the owner's ring
    if forwarded is not None:
        return forwarded
    reference = await asyncio.to_thread(diagnosis.set_reference, camera.id, principal.name)
    audit(principal.name, AuditAction.CAMERA_REFERENCE, camera_id=camera.id, change="set")
    return ReferenceOut.model_validate(reference)


@router.delete(
    "/cameras/{camera_id}/reference",
    status_code=204,
    summary="Forget the camera's reference view (its moved check then stays quiet)",
    responses={404: {"description": "Unknown camera, or no reference set"}},
)
async def remove_reference(
    camera_id: str,
    diagnosis: DiagnosisDep,
    access: AccessDep,
    audit: AuditDep,
    principal: Operator,
) -> Response:
    camera = access.camera(principal, camera_id)
    if not await asyncio.to_thread(diagnosis.clear_reference, camera.id):
        raise NoReference(f"camera {camera.id!r} has no reference picture")
    audit(principal.name, AuditAction.CAMERA_REFERENCE, camera_id=camera.id, change="removed")
    return Response(status_code=204)


@router.get(
    "/cameras/{camera_id}/reference.jpg",
    response_class=Response,
    summary="The picture the reference was taken from, as the operator saw it",
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "The reference picture"},
        404: {"description": "Unknown camera, or no reference set"},
    },
)
async def reference_jpeg(
    camera_id: str, diagnosis: DiagnosisDep, access: AccessDep, principal: Viewer
) -> Response:
    camera = access.camera(principal, camera_id)
    reference = await asyncio.to_thread(diagnosis.reference, camera.id)
    if reference is None:
        raise NoReference(f"camera {camera.id!r} has no reference picture")
    return Response(reference.jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


def _quality_out(
    diagnosis: DiagnosisService, camera_id: str, reference: Reference | None
) -> QualityOut:
    settings = diagnosis.settings(camera_id)
    state = diagnosis.state(camera_id)
    active = state.active if state is not None else frozenset()
    return QualityOut(
        camera_id=camera_id,
        diagnosed=state is not None,
        settling=state is not None and state.settling,
        measured_at=None if state is None else state.measured_at,
        checks=[
            CheckOut(check=check.value, event_type=f"quality.{check.value}", active=check in active)
            for check in QualityCheck
        ],
        figures=(
            None
            if state is None or state.figures is None
            else FiguresOut.model_validate(state.figures)
        ),
        packets=(
            None
            if state is None or state.packets is None
            else PacketFiguresOut.model_validate(state.packets)
        ),
        thresholds=dataclasses.asdict(settings.thresholds),
        hold_s=settings.timing.hold_s,
        clear_s=settings.timing.clear_s,
        interval_s=settings.interval_s,
        reference=None if reference is None else ReferenceOut.model_validate(reference),
    )
