"""PTZ of a camera (ONVIF devices and GB/T 28181 channels): moves, presets, who steers.

Commands and lease changes are answered by the node holding the camera (forwarded there);
lease state is read from the shared table by any node.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Request, Response

from surveillance.api.deps import AccessDep, CatalogDep, PtzDep, client_address
from surveillance.api.forward import to_owner
from surveillance.api.guards import requires
from surveillance.api.schemas.ptz import (
    CameraLeaseOut,
    LeaseIn,
    LeaseOut,
    PresetOut,
    PtzIn,
    PtzStateOut,
)
from surveillance.auth.principal import Principal
from surveillance.auth.roles import Permission
from surveillance.errors import InvalidRequest
from surveillance.services.ptz_control import Actor, Move, Order, PresetOrder
from surveillance.services.ptz_leases import PtzLease

router = APIRouter(prefix="/api", tags=["ptz"])

Controller = Annotated[Principal, requires(Permission.PTZ_CONTROL)]
Viewer = Annotated[Principal, requires(Permission.LIVE_VIEW)]

REFUSALS: dict[int | str, dict[str, str]] = {
    404: {"description": "Unknown camera, or not in the caller's scope"},
    409: {"description": "The camera cannot be steered (why), or another user steers it"},
    502: {"description": "The device or platform refused the command"},
    503: {"description": "The camera is offline or its device or platform cannot be reached"},
    504: {"description": "The device did not answer in time"},
}


def _actor(request: Request, principal: Principal) -> Actor:
    return Actor(principal.name, principal.user.role, client_address(request))


def _lease_out(lease: PtzLease | None, principal: Principal) -> LeaseOut | None:
    if lease is None:
        return None
    left = round(max(0.0, lease.expires_at - time.time()), 1)
    return LeaseOut(
        holder=lease.holder, role=lease.role, expires_in_s=left, mine=lease.holder == principal.name
    )


@router.get(
    "/cameras/{camera_id}/ptz",
    response_model=PtzStateOut,
    summary="Whether the camera can be steered, who steers it, its presets",
    responses={404: REFUSALS[404]},
)
async def ptz_state(
    request: Request, camera_id: str, ptz: PtzDep, access: AccessDep, principal: Viewer
) -> PtzStateOut | Response:
    camera = access.camera(principal, camera_id)
    forwarded = await to_owner(request, camera_id)  # its owner knows the device's presets
    if forwarded is not None:
        return forwarded
    state = await ptz.state(camera)
    config = ptz.config
    return PtzStateOut(
        camera_id=camera.id,
        controllable=state.controllable,
        kind=state.kind,
        reason=state.reason,
        lease=_lease_out(state.lease, principal),
        presets=[PresetOut(token=p.token, name=p.name) for p in state.presets],
        home_preset=camera.onvif.home_preset if camera.onvif is not None else None,
        idle_home_s=config.idle_home_s,
        move_timeout_s=config.move_timeout_s,
    )


@router.get(
    "/ptz/leases",
    response_model=list[CameraLeaseOut],
    summary="Who steers which camera now (the cameras in the caller's scope)",
)
async def ptz_leases(
    ptz: PtzDep, catalog: CatalogDep, access: AccessDep, principal: Viewer
) -> list[CameraLeaseOut]:
    now = time.time()
    held = {lease.camera_id: lease for lease in await ptz.held()}
    visible = access.cameras(principal, [c for c in map(catalog.camera, held) if c is not None])
    return [
        CameraLeaseOut(
            camera_id=camera.id,
            holder=held[camera.id].holder,
            role=held[camera.id].role,
            expires_in_s=round(max(0.0, held[camera.id].expires_at - now), 1),
        )
        for camera in visible
    ]


@router.post(
    "/cameras/{camera_id}/ptz/lease",
    response_model=LeaseOut,
    summary="Take (or with takeover, take over from a lower role) the camera's control",
    responses={404: REFUSALS[404], 409: REFUSALS[409]},
)
async def take_lease(
    request: Request,
    camera_id: str,
    body: LeaseIn,
    ptz: PtzDep,
    access: AccessDep,
    principal: Controller,
) -> LeaseOut | Response:
    camera = access.camera(principal, camera_id)
    forwarded = await to_owner(request, camera_id)
    if forwarded is not None:
        return forwarded
    lease = await ptz.take(camera, _actor(request, principal), takeover=body.takeover)
    out = _lease_out(lease, principal)
    assert out is not None
    return out


@router.delete(
    "/cameras/{camera_id}/ptz/lease",
    status_code=204,
    summary="Let go of the camera's control (its holder, or a higher role)",
    responses={404: REFUSALS[404], 409: REFUSALS[409]},
)
async def release_lease(
    request: Request, camera_id: str, ptz: PtzDep, access: AccessDep, principal: Controller
) -> Response:
    camera = access.camera(principal, camera_id)
    forwarded = await to_owner(request, camera_id)
    if forwarded is not None:
        return forwarded
    await ptz.release(camera, _actor(request, principal))
    return Response(status_code=204)


@router.post(
    "/cameras/{camera_id}/ptz",
    status_code=204,
    summary="Move the camera (pan, tilt, zoom in -1..1; all 0 stops) or use a preset",
    responses={
        200: {"model": PresetOut, "description": "The preset saved (action set)"},
        **REFUSALS,
    },
)
async def ptz_command(
    request: Request,
    camera_id: str,
    body: PtzIn,
    ptz: PtzDep,
    access: AccessDep,
    principal: Controller,
) -> Response:
    camera = access.camera(principal, camera_id)
    forwarded = await to_owner(request, camera_id)  # the node holding it steers it
    if forwarded is not None:
        return forwarded
    order: Order
    if body.preset is not None:
        preset = body.preset
        if camera.onvif is not None and preset.action == "set" and preset.number is not None:
            # An ONVIF device chooses a new preset's token; a number would name an existing one.
            raise InvalidRequest(
                "preset: an ONVIF camera's presets are saved by name (the device chooses the "
                "token; give a token as GET .../ptz lists it to overwrite one), not by number"
            )
        order = PresetOrder(preset.action, preset.resolved_token, preset.name)
    else:
        order = Move(body.pan or 0.0, body.tilt or 0.0, body.zoom or 0.0)
    saved = await ptz.command(camera, _actor(request, principal), order)
    if saved is None:
        return Response(status_code=204)
    out = PresetOut(token=saved.token, name=saved.name)
    return Response(out.model_dump_json(), status_code=200, media_type="application/json")
