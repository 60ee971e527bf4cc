"""Zones drawn on a camera's picture: list, create, change, remove.

Who may see the camera sees its zones; changing them takes ``zones.edit``. A bad outline
or schedule is a 422 naming the point, the edges or the field (zones/geometry.py,
zones/schedule.py), a name already used on the camera too. Every change is audited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Response

from surveillance.api.deps import AccessDep, AuditDep, Auditor, ZonesDep
from surveillance.api.guards import requires
from surveillance.api.schemas.zones import ZoneIn, ZoneOut
from surveillance.auth.audit import AuditAction
from surveillance.auth.principal import Principal
from surveillance.auth.roles import Permission
from surveillance.zones.geometry import check_outline
from surveillance.zones.records import ZoneRecord, ZoneSpec

router = APIRouter(prefix="/api/cameras/{camera_id}/zones", tags=["zones"])

Viewer = Annotated[Principal, requires(Permission.EVENTS_VIEW)]
Editor = Annotated[Principal, requires(Permission.ZONES_EDIT)]


def _out(zone: ZoneRecord, now: datetime) -> ZoneOut:
    change = zone.schedule.next_change(now) if zone.enabled else None
    return ZoneOut(
        id=zone.id,
        camera_id=zone.camera_id,
        name=zone.name,
        tag=zone.tag,
        points=list(zone.points),
        schedule=zone.schedule,
        sensitivity=zone.sensitivity,
        enabled=zone.enabled,
        created_by=zone.created_by,
        created_at=zone.created_at,
        updated_at=zone.updated_at,
        armed_now=zone.armed_at(now),
        # Local, naive (the node's TZ): .timestamp() reads it as local time.
        next_change=change.timestamp() if change else None,
    )


def _audit(audit: Auditor, principal: Principal, action: AuditAction, zone: ZoneRecord) -> None:
    audit(principal.name, action, camera_id=zone.camera_id, zone=zone.id, name=zone.name)


def _spec(camera_id: str, body: ZoneIn) -> ZoneSpec:
    return ZoneSpec(
        camera_id=camera_id,
        name=body.name,
        tag=body.tag,
        points=check_outline(body.points),
        schedule=body.schedule,
        sensitivity=body.sensitivity,
        enabled=body.enabled,
    )


@router.get("", response_model=list[ZoneOut], summary="A camera's zones, armed now or not")
def list_zones(
    camera_id: str, zones: ZonesDep, access: AccessDep, principal: Viewer
) -> list[ZoneOut]:
    access.camera(principal, camera_id)
    now = datetime.now()
    return [_out(zone, now) for zone in zones.zones(camera_id)]


@router.post("", response_model=ZoneOut, status_code=201, summary="Draw a new zone")
def create_zone(
    camera_id: str, body: ZoneIn, zones: ZonesDep, access: AccessDep, audit: AuditDep,
    principal: Editor,
) -> ZoneOut:  # fmt: skip
    access.camera(principal, camera_id)
    zone = zones.create(_spec(camera_id, body), principal.name)
    _audit(audit, principal, AuditAction.ZONE_SAVE, zone)
    return _out(zone, datetime.now())


@router.put("/{zone_id}", response_model=ZoneOut, summary="Change a zone")
def update_zone(
    camera_id: str, zone_id: int, body: ZoneIn, zones: ZonesDep, access: AccessDep,
    audit: AuditDep, principal: Editor,
) -> ZoneOut:  # fmt: skip
    access.camera(principal, camera_id)
    zone = zones.update(zone_id, _spec(camera_id, body))
    _audit(audit, principal, AuditAction.ZONE_SAVE, zone)
    return _out(zone, datetime.now())


@router.delete("/{zone_id}", status_code=204, summary="Remove a zone")
def delete_zone(
    camera_id: str, zone_id: int, zones: ZonesDep, access: AccessDep, audit: AuditDep,
    principal: Editor,
) -> Response:  # fmt: skip
    access.camera(principal, camera_id)
    zone = zones.delete(camera_id, zone_id)
    _audit(audit, principal, AuditAction.ZONE_DELETE, zone)
    return Response(status_code=204)
