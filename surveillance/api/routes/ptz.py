"""PTZ of a camera: moves and presets, sent to GB/T 28181 channels through their platform."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response

from surveillance.api.deps import AccessDep, AuditDep, GbControlDep
from surveillance.api.forward import to_owner
from surveillance.api.guards import requires
from surveillance.api.schemas.ptz import PtzIn
from surveillance.auth.audit import AuditAction
from surveillance.auth.principal import Principal
from surveillance.auth.roles import Permission
from surveillance.errors import SurveillanceError
from surveillance.services.gb_control import PtzMove, PtzPreset

router = APIRouter(prefix="/api", tags=["ptz"])

Controller = Annotated[Principal, requires(Permission.PTZ_CONTROL)]


@router.post(
    "/cameras/{camera_id}/ptz",
    status_code=204,
    summary="Move the camera (pan, tilt, zoom in -1..1; all 0 stops) or use a preset",
    responses={
        404: {"description": "Unknown camera"},
        409: {"description": "The camera cannot be steered (not a GB/T 28181 channel)"},
        502: {"description": "The camera's platform refused the command"},
        503: {"description": "The camera's platform is not registered or did not answer"},
    },
)
async def ptz(
    request: Request,
    camera_id: str,
    body: PtzIn,
    control: GbControlDep,
    access: AccessDep,
    audit: AuditDep,
    principal: Controller,
) -> Response:
    camera = access.camera(principal, camera_id)
    forwarded = await to_owner(request, camera_id)  # the node holding it steers it
    if forwarded is not None:
        return forwarded
    order: PtzMove | PtzPreset
    if body.preset is not None:
        order = PtzPreset(body.preset.action, body.preset.number)
    else:
        order = PtzMove(body.pan or 0.0, body.tilt or 0.0, body.zoom or 0.0)
    try:
        await control.ptz(camera, order)
    except SurveillanceError as exc:  # audited as failed, answered by its own status
        audit(
            principal.name,
            AuditAction.CAMERA_PTZ,
            camera_id=camera.id,
            outcome="failed",
            reason=str(exc)[:200],
            **order.detail(),
        )
        raise
    audit(principal.name, AuditAction.CAMERA_PTZ, camera_id=camera.id, **order.detail())
    return Response(status_code=204)
