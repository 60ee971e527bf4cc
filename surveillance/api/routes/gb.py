"""GB/T 28181 platforms for administrators: their registration status and channels, and
names and tags set by hand on channel cameras (kept across catalog refreshes, audited)."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query, Response

from surveillance.api.deps import AccessDep, AuditDep, CatalogDep, GbDep
from surveillance.api.guards import requires
from surveillance.api.schemas.gb import (
    CHANNEL_PAGE_MAX,
    GbChannelOut,
    GbChannelPageOut,
    GbOverrideIn,
    GbOverrideOut,
    GbPlatformOut,
)
from surveillance.auth.audit import AuditAction
from surveillance.auth.principal import Principal
from surveillance.auth.roles import Permission
from surveillance.errors import NotFound
from surveillance.services.gb_cameras import GbChannelCameras
from surveillance.services.gb_registry import GbRegistry

router = APIRouter(prefix="/api", tags=["gb28181"])

# Reading platforms' addresses and state is the node's configuration (as /metrics);
# changing what a camera is called and tagged is an administrator's (as users).
Reader = Annotated[Principal, requires(Permission.SYSTEM_READ)]
Admin = Annotated[Principal, requires(Permission.USERS_MANAGE)]


class NotAChannel(NotFound):
    def __init__(self, camera_id: str) -> None:
        super().__init__(f"camera {camera_id!r} is not a GB/T 28181 channel")


def _visible(principal: Principal, platform_id: str) -> bool:
    scope = principal.scope
    return not scope.limited or platform_id in scope.platforms


@router.get("/gb/platforms", response_model=list[GbPlatformOut], summary="GB/T 28181 platforms")
def list_gb_platforms(gb: GbDep, principal: Reader) -> list[GbPlatformOut]:
    if gb is None:
        return []
    return [
        GbPlatformOut.model_validate(s) for s in gb.status() if _visible(principal, s.platform_id)
    ]


@router.get(
    "/gb/platforms/{platform_id}/channels",
    response_model=GbChannelPageOut,
    summary="A GB/T 28181 platform's channels",
)
def list_gb_channels(
    platform_id: str,
    gb: GbDep,
    catalog: CatalogDep,
    principal: Reader,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=CHANNEL_PAGE_MAX)] = 100,
) -> GbChannelPageOut:
    if (
        gb is None
        or platform_id not in gb.cameras.platforms
        or not _visible(principal, platform_id)
    ):
        raise NotFound(f"no GB/T 28181 platform {platform_id!r}")
    channels = gb.cameras.channels(platform_id)
    page = []
    for channel in channels[offset : offset + limit]:
        camera_id = f"{platform_id}.{channel.channel_id}"
        camera = catalog.camera(camera_id)
        override = gb.cameras.override(camera_id)
        page.append(
            GbChannelOut(
                camera_id=camera_id,
                channel_id=channel.channel_id,
                name=camera.name if camera else channel.name,
                channel_name=channel.name,
                tags=list(camera.tags) if camera else [],
                status=channel.status,
                civil_code=channel.civil_code,
                parent_id=channel.parent_id,
                business_group_id=channel.business_group_id,
                manufacturer=channel.manufacturer,
                model=channel.model,
                address=channel.address,
                longitude=channel.longitude,
                latitude=channel.latitude,
                ptz_type=channel.ptz_type,
                override=GbOverrideOut.model_validate(override) if override else None,
            )
        )
    return GbChannelPageOut(total=len(channels), offset=offset, limit=limit, channels=page)


def _channel_cameras(gb: GbRegistry | None, camera_id: str) -> GbChannelCameras:
    if gb is None or gb.cameras.channel(camera_id) is None:
        raise NotAChannel(camera_id)
    return gb.cameras


@router.put(
    "/cameras/{camera_id}/override",
    response_model=GbOverrideOut,
    summary="Set a GB/T 28181 channel camera's name and tags",
)
async def set_override(
    camera_id: str,
    body: GbOverrideIn,
    gb: GbDep,
    access: AccessDep,
    audit: AuditDep,
    principal: Admin,
) -> GbOverrideOut:
    access.camera(principal, camera_id)  # 404 outside the scope
    cameras = _channel_cameras(gb, camera_id)
    access.check_references(principal, body.tags, None)  # 422 for an unknown tag
    tags = None if body.tags is None else list(dict.fromkeys(body.tags))
    override = await cameras.set_override(
        camera_id, name=body.name, tags=tags, user=principal.name, at=time.time()
    )
    audit(principal.name, AuditAction.GB_OVERRIDE, camera_id=camera_id, name=body.name, tags=tags)
    return GbOverrideOut.model_validate(override)


@router.delete(
    "/cameras/{camera_id}/override",
    status_code=204,
    summary="Give a GB/T 28181 channel camera its own name and tags back",
)
async def clear_override(
    camera_id: str, gb: GbDep, access: AccessDep, audit: AuditDep, principal: Admin
) -> Response:
    access.camera(principal, camera_id)
    cameras = _channel_cameras(gb, camera_id)
    if await cameras.clear_override(camera_id) is not None:
        audit(principal.name, AuditAction.GB_OVERRIDE, camera_id=camera_id, cleared=True)
    return Response(status_code=204)
