"""ONVIF discovery for administrators: start a run, follow it, turn chosen devices into
catalog rows (CSV or YAML to add to the configuration).

A run is node-local (it probes from this node's interfaces) and audited ``onvif.discover``
with its targets; the password given for inspecting devices is never audited, logged or
answered. Camera ids a scoped administrator may not see are left out of the results.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response

from surveillance.api.deps import AccessDep, AuditDep, DiscoveryDep
from surveillance.api.guards import requires
from surveillance.api.schemas.onvif import (
    CatalogIn,
    DeviceOut,
    DiscoveryIn,
    DiscoveryRunOut,
    DroppedOut,
    ProfileOut,
)
from surveillance.auth.audit import AuditAction
from surveillance.auth.principal import Principal
from surveillance.auth.roles import Permission
from surveillance.errors import SurveillanceError
from surveillance.services.access import Access
from surveillance.services.onvif_discovery import DiscoveryRequest, DiscoveryRun

router = APIRouter(prefix="/api/onvif", tags=["onvif"])

Admin = Annotated[Principal, requires(Permission.DEVICES_DISCOVER)]
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "yaml": "application/yaml; charset=utf-8"}


def run_out(run: DiscoveryRun, access: Access, principal: Principal) -> DiscoveryRunOut:
    def seen(camera_id: str | None) -> str | None:
        return camera_id if camera_id and access.sees_camera(principal, camera_id) else None

    devices = []
    for result in run.results:
        report = result.report
        hidden = result.camera_id is not None and seen(result.camera_id) is None
        devices.append(
            DeviceOut(
                device_url=report.device_url,
                outcome=report.outcome,
                reason=report.reason,
                endpoint=report.endpoint,
                manufacturer=report.manufacturer,
                model=report.model,
                firmware=report.firmware,
                serial=report.serial,
                name=report.name,
                location=report.location,
                main_uri=report.main_uri,
                sub_uri=report.sub_uri,
                ptz=report.ptz,
                clock_offset_s=report.clock_offset_s,
                found_by=report.found_by,
                profiles=[ProfileOut.model_validate(p) for p in report.profiles],
                # Another platform's camera: the device is shown as found, not whose it is.
                catalog_status="new" if hidden and report.ok else result.status,
                camera_id=seen(result.camera_id),
                changes=[] if hidden else list(result.changes),
            )
        )
    return DiscoveryRunOut(
        id=run.id,
        state=run.state,
        phase=run.phase,
        by=run.by,
        targets=list(run.targets),
        multicast=run.multicast,
        time_limit_s=run.time_limit_s,
        started_at=run.started_at,
        elapsed_s=run.elapsed_s,
        probes_sent=run.probes_sent,
        to_inspect=run.to_inspect,
        silent=run.silent,
        not_probed=run.not_probed,
        devices=devices,
        gone=[camera_id for camera_id in run.gone if seen(camera_id)],
        dropped=[DroppedOut(address=a, reason=r) for a, r in run.dropped],
    )


@router.post(
    "/discovery",
    status_code=202,
    response_model=DiscoveryRunOut,
    summary="Start a discovery run (WS-Discovery, then inspection of each device)",
    responses={409: {"description": "A run is going on"}, 422: {"description": "Bad targets"}},
)
async def start_discovery(
    body: DiscoveryIn,
    discovery: DiscoveryDep,
    access: AccessDep,
    audit: AuditDep,
    principal: Admin,
) -> DiscoveryRunOut:
    password = body.password.get_secret_value() if body.password is not None else None

    def record(outcome: str, **more: str) -> None:
        audit(
            principal.name,
            AuditAction.ONVIF_DISCOVER,
            outcome=outcome,
            targets=body.targets,
            multicast=body.multicast,
            username=body.username,
            **more,
        )

    try:
        run = discovery.start(
            DiscoveryRequest(
                targets=tuple(body.targets),
                multicast=body.multicast,
                username=body.username or None,
                password=password,
                time_limit_s=body.time_limit_s,
            ),
            by=principal.name,
        )
    except SurveillanceError as exc:  # refused: bad targets, or a run going on
        record("failed", reason=str(exc))
        raise
    record("ok", run=run.id)
    return run_out(run, access, principal)


@router.get(
    "/discovery/{run_id}",
    response_model=DiscoveryRunOut,
    summary="A discovery run's progress and results",
    responses={404: {"description": "No such run (only the last ones are kept)"}},
)
async def get_discovery(
    run_id: str, discovery: DiscoveryDep, access: AccessDep, principal: Admin
) -> DiscoveryRunOut:
    return run_out(discovery.get(run_id), access, principal)


@router.post(
    "/discovery/{run_id}/catalog",
    summary="Catalog rows (CSV or YAML) for chosen devices of a run",
    responses={
        200: {"content": {"text/csv": {}, "application/yaml": {}}},
        404: {"description": "No such run"},
        422: {
            "description": "A device not in the run, not inspected, already in the catalog "
            'as "same", or a bad platform'
        },
    },
)
async def discovery_catalog(
    run_id: str, body: CatalogIn, discovery: DiscoveryDep, principal: Admin
) -> Response:
    text = discovery.catalog_text(
        run_id,
        body.devices,
        fmt=body.format,
        platform=body.platform,
        tags=body.tags,
        id_prefix=body.id_prefix,
    )
    name = f"onvif-cameras-{run_id}.{body.format}"
    return Response(
        text,
        media_type=MEDIA_TYPES[body.format],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
