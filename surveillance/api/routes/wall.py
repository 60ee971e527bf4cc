"""Wall layouts and tours: named, stored on the server, shared by every wall screen.

What a user limited to some cameras sees of them, and may change, is the access service's
to decide (``services/access.py``)."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Response

from surveillance.api.deps import AccessDep, AuditDep, WallDep
from surveillance.api.guards import requires
from surveillance.api.schemas.wall import TourPageOut, TourScheduleOut
from surveillance.auth.audit import AuditAction
from surveillance.auth.principal import Principal
from surveillance.auth.roles import Permission
from surveillance.errors import InvalidRequest
from surveillance.wall.errors import LayoutNotFound, TourNotFound
from surveillance.wall.layouts import PRESETS, Grid, Layout, LayoutName
from surveillance.wall.tours import Tour, page_dwells

router = APIRouter(prefix="/api", tags=["wall"])

Viewer = Annotated[Principal, requires(Permission.LIVE_VIEW)]
Editor = Annotated[Principal, requires(Permission.WALL_EDIT)]


@router.get("/layouts/presets", response_model=dict[str, Grid], summary="Built-in grids")
def presets(principal: Viewer) -> dict[str, Grid]:
    return PRESETS


@router.get("/layouts", response_model=list[Layout], summary="Named layouts")
def list_layouts(wall: WallDep, access: AccessDep, principal: Viewer) -> list[Layout]:
    return [access.grid(principal, layout) for layout in wall.layouts()]


@router.get("/layouts/{name}", response_model=Layout)
def get_layout(name: LayoutName, wall: WallDep, access: AccessDep, principal: Viewer) -> Layout:
    layout = wall.layout(name)
    if layout is None:
        raise LayoutNotFound(name)
    return access.grid(principal, layout)


@router.put("/layouts/{name}", response_model=Layout, summary="Create or replace a layout")
def put_layout(
    name: LayoutName,
    layout: Layout,
    wall: WallDep,
    access: AccessDep,
    audit: AuditDep,
    principal: Editor,
) -> Layout:
    if layout.name != name:
        raise InvalidRequest("the layout's name must match the URL")
    access.check_layout_save(principal, layout, wall.layout(name))
    wall.save_layout(layout, principal.name)
    audit(principal.name, AuditAction.LAYOUT_SAVE, layout=name)
    return layout


@router.delete("/layouts/{name}", status_code=204)
def delete_layout(
    name: LayoutName, wall: WallDep, access: AccessDep, audit: AuditDep, principal: Editor
) -> Response:
    existing = wall.layout(name)
    if existing is None:
        raise LayoutNotFound(name)
    access.check_layout_change(principal, existing)
    wall.delete_layout(name)
    audit(principal.name, AuditAction.LAYOUT_DELETE, layout=name)
    return Response(status_code=204)


@router.get("/tours", response_model=list[Tour], summary="Tours")
def list_tours(wall: WallDep, access: AccessDep, principal: Viewer) -> list[Tour]:
    return [access.tour(principal, tour) for tour in wall.tours()]


@router.put("/tours/{name}", response_model=Tour, summary="Create or replace a tour")
def put_tour(
    name: LayoutName,
    tour: Tour,
    wall: WallDep,
    access: AccessDep,
    audit: AuditDep,
    principal: Editor,
) -> Tour:
    if tour.name != name:
        raise InvalidRequest("the tour's name must match the URL")
    access.check_tour_save(principal, tour, wall.tour(name))
    wall.save_tour(tour, principal.name)
    audit(principal.name, AuditAction.TOUR_SAVE, tour=name)
    return tour


@router.delete("/tours/{name}", status_code=204)
def delete_tour(
    name: LayoutName, wall: WallDep, access: AccessDep, audit: AuditDep, principal: Editor
) -> Response:
    existing = wall.tour(name)
    if existing is None:
        raise TourNotFound(name)
    access.check_tour_change(principal, existing)
    wall.delete_tour(name)
    audit(principal.name, AuditAction.TOUR_DELETE, tour=name)
    return Response(status_code=204)


@router.get("/tours/{name}/pages", response_model=list[Grid], summary="A tour's pages now")
def tour_pages(name: LayoutName, wall: WallDep, access: AccessDep, principal: Viewer) -> list[Grid]:
    """Fixed pages as stored; a tag tour's pages from the cameras carrying the tag now."""
    tour = wall.tour(name)
    if tour is None:
        raise TourNotFound(name)
    return access.tour_pages(principal, tour)


@router.get(
    "/tours/{name}/schedule", response_model=TourScheduleOut, summary="A tour's pages and clock"
)
def tour_schedule(
    name: LayoutName, wall: WallDep, access: AccessDep, principal: Viewer
) -> TourScheduleOut:
    """The tour's pages now, each with its dwell, the start of its cycle and the server's
    time: a screen derives the page to show from the server's clock, not its own timer, so
    two screens showing the tour agree."""
    tour = wall.tour(name)
    saved_at = wall.tour_saved_at(name)
    if tour is None or saved_at is None:
        raise TourNotFound(name)
    grids = access.tour_pages(principal, tour)
    dwells = page_dwells(tour, len(grids))
    return TourScheduleOut(
        name=tour.name,
        title=tour.title,
        epoch=saved_at,
        server_time=time.time(),
        pages=[
            TourPageOut(grid=grid, dwell_s=dwell) for grid, dwell in zip(grids, dwells, strict=True)
        ],
    )
