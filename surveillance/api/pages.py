"""Routes that serve the pages (static files from ``surveillance.web``); the security headers
every response carries are added around the whole app (``security_headers.py``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from surveillance.api.guards import page_requires, public
from surveillance.auth.roles import Permission
from surveillance.wall.layouts import LayoutDisplay

STATIC_DIR = Path(str(resources.files("surveillance.web") / "static"))
ICON = "favicon.svg"  # every page links it; /favicon.ico answers with it for other clients
ICON_CACHE_S = 86_400

router = APIRouter(include_in_schema=False)


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC_DIR / name, headers={"Cache-Control": "no-cache"})


@router.get("/", dependencies=[page_requires()])
def index() -> RedirectResponse:
    return RedirectResponse("/wall")


@router.get("/login", dependencies=[public()])
def login() -> FileResponse:
    return _page("login.html")


@router.get("/wall", dependencies=[page_requires(Permission.LIVE_VIEW)])
@router.get("/wall/{layout}", dependencies=[page_requires(Permission.LIVE_VIEW)])
def wall(
    layout: str | None = None,
    mode: Annotated[
        LayoutDisplay | None,
        Query(
            description="wall: tiles and a status line only; desk: the operator's controls; "
            "unset: as the saved layout says"
        ),
    ] = None,
) -> FileResponse:
    # The page reads the layout name and the mode from its own URL; the server sends the same
    # file, having refused a mode the page would not understand.
    return _page("wall.html")


@router.get("/favicon.ico", dependencies=[public()])
def favicon() -> FileResponse:
    # Browsers and tools ask for /favicon.ico when a page names no icon; ours name the SVG,
    # served here too rather than kept twice in two formats.
    return FileResponse(
        STATIC_DIR / ICON,
        media_type="image/svg+xml",
        headers={"Cache-Control": f"max-age={ICON_CACHE_S}"},
    )


@router.get("/cases", dependencies=[page_requires(Permission.CASES_READ)])
def cases() -> FileResponse:
    return _page("cases.html")


@router.get("/cases/{number}", dependencies=[page_requires(Permission.CASES_READ)])
def case(number: str) -> FileResponse:
    # As with the wall: the page reads the case number from its own URL.
    return _page("case.html")


@router.get("/admin", dependencies=[page_requires(Permission.USERS_MANAGE)])
def admin() -> FileResponse:
    return _page("admin.html")


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
