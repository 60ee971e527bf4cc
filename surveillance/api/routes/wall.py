"""Wall layouts and tours: named, stored on the server, shared by every wall screen.

A user limited to some cameras sees the others' tiles empty, and may not overwrite a layout
or tour that shows cameras they cannot see (they would drop them without knowing)."""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import APIRouter, HTTPException, Request, Response

from surveillance.api.deps import NodeDep
from surveillance.api.guards import audit, requires, sees_camera
from surveillance.api.node import Node
from surveillance.auth.principal import Principal
from surveillance.auth.roles import Permission
from surveillance.wall.layouts import PRESETS, Grid, Layout, LayoutName
from surveillance.wall.tours import Tour, tag_pages

router = APIRouter(prefix="/api", tags=["wall"])

Viewer = Annotated[Principal, requires(Permission.LIVE_VIEW)]
Editor = Annotated[Principal, requires(Permission.WALL_EDIT)]
G = TypeVar("G", bound=Grid)


def _check_cameras(node: Node, principal: Principal, grids: list[Grid]) -> None:
    named = {t.camera for g in grids for t in g.tiles if t.camera}
    unknown = sorted(c for c in named if not sees_camera(node, principal, c))
    if unknown:
        raise HTTPException(422, f"unknown camera(s): {', '.join(unknown)}")


def _scoped(node: Node, principal: Principal, grid: G) -> G:
    """The grid with tiles of cameras outside the principal's scope emptied."""
    if not principal.scope.limited:
        return grid
    tiles = [
        t
        if t.camera is None or sees_camera(node, principal, t.camera)
        else t.model_copy(update={"camera": None})
        for t in grid.tiles
    ]
    return grid.model_copy(update={"tiles": tiles})


def _scoped_tour(node: Node, principal: Principal, tour: Tour) -> Tour:
    pages = [p.model_copy(update={"grid": _scoped(node, principal, p.grid)}) for p in tour.pages]
    return tour.model_copy(update={"pages": pages})


def _check_overwrite(node: Node, principal: Principal, grids: list[Grid]) -> None:
    hidden = [
        t for g in grids for t in g.tiles if t.camera and not sees_camera(node, principal, t.camera)
    ]
    if hidden:
        raise HTTPException(403, "this shows cameras outside your scope; an admin may change it")


@router.get("/layouts/presets", response_model=dict[str, Grid], summary="Built-in grids")
def presets(principal: Viewer) -> dict[str, Grid]:
    return PRESETS


@router.get("/layouts", response_model=list[Layout], summary="Named layouts")
def list_layouts(node: NodeDep, principal: Viewer) -> list[Layout]:
    return [_scoped(node, principal, layout) for layout in node.wall.layouts()]


@router.get("/layouts/{name}", response_model=Layout)
def get_layout(name: LayoutName, node: NodeDep, principal: Viewer) -> Layout:
    layout = node.wall.layout(name)
    if layout is None:
        raise HTTPException(404, f"no layout named {name!r}")
    return _scoped(node, principal, layout)


@router.put("/layouts/{name}", response_model=Layout, summary="Create or replace a layout")
def put_layout(
    name: LayoutName, layout: Layout, node: NodeDep, principal: Editor, request: Request
) -> Layout:
    if layout.name != name:
        raise HTTPException(422, "the layout's name must match the URL")
    _check_cameras(node, principal, [layout])
    existing = node.wall.layout(name)
    if existing is not None:
        _check_overwrite(node, principal, [existing])
    node.wall.save_layout(layout, principal.name)
    audit(request, principal.name, "layout.save", layout=name)
    return layout


@router.delete("/layouts/{name}", status_code=204)
def delete_layout(name: LayoutName, node: NodeDep, principal: Editor, request: Request) -> Response:
    existing = node.wall.layout(name)
    if existing is None:
        raise HTTPException(404, f"no layout named {name!r}")
    _check_overwrite(node, principal, [existing])
    node.wall.delete_layout(name)
    audit(request, principal.name, "layout.delete", layout=name)
    return Response(status_code=204)


@router.get("/tours", response_model=list[Tour], summary="Tours")
def list_tours(node: NodeDep, principal: Viewer) -> list[Tour]:
    return [_scoped_tour(node, principal, tour) for tour in node.wall.tours()]


@router.put("/tours/{name}", response_model=Tour, summary="Create or replace a tour")
def put_tour(
    name: LayoutName, tour: Tour, node: NodeDep, principal: Editor, request: Request
) -> Tour:
    if tour.name != name:
        raise HTTPException(422, "the tour's name must match the URL")
    if tour.tag and tour.tag not in node.catalog.tags:
        raise HTTPException(422, f"unknown tag {tour.tag!r}")
    _check_cameras(node, principal, [page.grid for page in tour.pages])
    existing = node.wall.tour(name)
    if existing is not None:
        _check_overwrite(node, principal, [page.grid for page in existing.pages])
    node.wall.save_tour(tour, principal.name)
    audit(request, principal.name, "tour.save", tour=name)
    return tour


@router.delete("/tours/{name}", status_code=204)
def delete_tour(name: LayoutName, node: NodeDep, principal: Editor, request: Request) -> Response:
    existing = node.wall.tour(name)
    if existing is None:
        raise HTTPException(404, f"no tour named {name!r}")
    _check_overwrite(node, principal, [page.grid for page in existing.pages])
    node.wall.delete_tour(name)
    audit(request, principal.name, "tour.delete", tour=name)
    return Response(status_code=204)


@router.get("/tours/{name}/pages", response_model=list[Grid], summary="A tour's pages now")
def tour_pages(name: LayoutName, node: NodeDep, principal: Viewer) -> list[Grid]:
    """Fixed pages as stored; a tag tour's pages from the cameras carrying the tag now."""
    tour = node.wall.tour(name)
    if tour is None:
        raise HTTPException(404, f"no tour named {name!r}")
    if tour.tag:
        cameras = [
            c.id
            for c in node.catalog.select(tags_all=[tour.tag])
            if principal.sees(c.id, c.platform_id)
        ]
        return tag_pages(tour.preset, cameras)
    return [_scoped(node, principal, page.grid) for page in tour.pages]
