"""Wall layouts and tours: named, stored on the server, shared by every wall screen."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response

from surveillance.api.deps import NodeDep, UserDep
from surveillance.api.node import Node
from surveillance.wall.layouts import PRESETS, Grid, Layout, LayoutName
from surveillance.wall.tours import Tour, tag_pages

router = APIRouter(prefix="/api", tags=["wall"])


def _check_cameras(node: Node, grids: list[Grid]) -> None:
    unknown = sorted(
        {t.camera for g in grids for t in g.tiles if t.camera and not node.catalog.camera(t.camera)}
    )
    if unknown:
        raise HTTPException(422, f"unknown camera(s): {', '.join(unknown)}")


@router.get("/layouts/presets", response_model=dict[str, Grid], summary="Built-in grids")
def presets() -> dict[str, Grid]:
    return PRESETS


@router.get("/layouts", response_model=list[Layout], summary="Named layouts")
def list_layouts(node: NodeDep) -> list[Layout]:
    return node.wall.layouts()


@router.get("/layouts/{name}", response_model=Layout)
def get_layout(name: LayoutName, node: NodeDep) -> Layout:
    layout = node.wall.layout(name)
    if layout is None:
        raise HTTPException(404, f"no layout named {name!r}")
    return layout


@router.put("/layouts/{name}", response_model=Layout, summary="Create or replace a layout")
def put_layout(name: LayoutName, layout: Layout, node: NodeDep, user: UserDep) -> Layout:
    if layout.name != name:
        raise HTTPException(422, "the layout's name must match the URL")
    _check_cameras(node, [layout])
    node.wall.save_layout(layout, user)
    return layout


@router.delete("/layouts/{name}", status_code=204)
def delete_layout(name: LayoutName, node: NodeDep) -> Response:
    if not node.wall.delete_layout(name):
        raise HTTPException(404, f"no layout named {name!r}")
    return Response(status_code=204)


@router.get("/tours", response_model=list[Tour], summary="Tours")
def list_tours(node: NodeDep) -> list[Tour]:
    return node.wall.tours()


@router.put("/tours/{name}", response_model=Tour, summary="Create or replace a tour")
def put_tour(name: LayoutName, tour: Tour, node: NodeDep, user: UserDep) -> Tour:
    if tour.name != name:
        raise HTTPException(422, "the tour's name must match the URL")
    if tour.tag and tour.tag not in node.catalog.tags:
        raise HTTPException(422, f"unknown tag {tour.tag!r}")
    _check_cameras(node, [page.grid for page in tour.pages])
    node.wall.save_tour(tour, user)
    return tour


@router.delete("/tours/{name}", status_code=204)
def delete_tour(name: LayoutName, node: NodeDep) -> Response:
    if not node.wall.delete_tour(name):
        raise HTTPException(404, f"no tour named {name!r}")
    return Response(status_code=204)


@router.get("/tours/{name}/pages", response_model=list[Grid], summary="A tour's pages now")
def tour_pages(name: LayoutName, node: NodeDep) -> list[Grid]:
    """Fixed pages as stored; a tag tour's pages from the cameras carrying the tag now."""
    tour = node.wall.tour(name)
    if tour is None:
        raise HTTPException(404, f"no tour named {name!r}")
    if tour.tag:
        cameras = [c.id for c in node.catalog.select(tags_all=[tour.tag])]
        return tag_pages(tour.preset, cameras)
    return [page.grid for page in tour.pages]
