"""Routes that serve the pages (static files from ``surveillance.web``); the security headers
every response carries are added around the whole app (``security_headers.py``)."""

from __future__ import annotations

import html
from importlib import resources
from pathlib import Path
from typing import Annotated, get_args

from fastapi import APIRouter, FastAPI, Query
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from surveillance.api.guards import page_requires, public
from surveillance.auth.roles import Permission
from surveillance.wall.layouts import LayoutDisplay

STATIC_DIR = Path(str(resources.files("surveillance.web") / "static"))
ICON = "favicon.svg"  # every page links it; /favicon.ico answers with it for other clients
ICON_CACHE_S = 86_400
MAX_MODE_CHARS = 32
MAX_TOUR_NAME_CHARS = 64  # as a tour's name (wall/tours.py)

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
        str | None,
        Query(
            description="wall: tiles and a status line only; desk: the operator's controls; "
            "unset or empty: as the saved layout says (any case)",
        ),
    ] = None,
    tour: Annotated[
        str | None,
        Query(
            description="a tour to run, in step with every other screen showing it",
        ),
    ] = None,
) -> Response:
    # The page reads the layout name, the mode and the tour from its own URL; the server
    # sends the same file, having refused a mode the page would not understand, in a page a
    # person at a browser can read rather than a JSON body.
    # Lengths are checked here rather than by the query's own limits, whose refusal would be
    # a JSON body in front of a person at a wall's browser.
    if mode is not None and (len(mode) > MAX_MODE_CHARS or not known_mode(mode)):
        return _mode_error(_shortened(mode, MAX_MODE_CHARS))
    if tour is not None and len(tour) > MAX_TOUR_NAME_CHARS:
        return _tour_error(_shortened(tour, MAX_TOUR_NAME_CHARS))
    return _page("wall.html")


def _shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def known_mode(mode: str | None) -> bool:
    """Whether the page understands ``?mode=``: "wall" or "desk" in any case, or unset or
    empty (the saved layout decides). js/wall-mode.js reads it the same way."""
    return mode is None or mode.strip().lower() in ("", *get_args(LayoutDisplay))


def _mode_error(mode: str) -> HTMLResponse:
    shown = html.escape(mode)
    return _error_page(
        "Unknown wall mode",
        f"""<p>This address asks for <code>mode={shown}</code>. The wall opens as
<code>mode=wall</code> (tiles and a status line only) or <code>mode=desk</code> (the operator's
controls); without <code>mode</code> it opens as its saved layout says.</p>
<p><a href="?mode=wall">Open in wall mode</a> · <a href="?mode=desk">Open at the desk</a></p>""",
    )


def _tour_error(tour: str) -> HTMLResponse:
    shown = html.escape(tour)
    return _error_page(
        "Not a tour name",
        f"""<p>This address asks for <code>tour={shown}</code>, longer than any tour's name
({MAX_TOUR_NAME_CHARS} characters at most). The tours are listed at the desk.</p>
<p><a href="/wall">Open the desk</a></p>""",
    )


def _error_page(title: str, paragraphs: str) -> HTMLResponse:
    # 422 like any other refused parameter, as a page: values are escaped, never markup.
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} · Wall</title>
<link rel="icon" href="/static/{ICON}" type="image/svg+xml">
<link rel="stylesheet" href="/static/css/base.css"></head>
<body class="error-page"><main>
<h1>{title}</h1>
{paragraphs}
</main></body></html>
"""
    return HTMLResponse(body, status_code=422, headers={"Cache-Control": "no-cache"})


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


@router.get("/playback", dependencies=[page_requires(Permission.LIVE_VIEW)])
def playback() -> FileResponse:
    # The page reads what to play and from when from its own URL. The footage needs
    # recordings.view, which the API checks on every request: a viewer who follows a link
    # here gets the page, and on it the API's refusal in words rather than a bare error.
    return _page("playback.html")


@router.get("/admin", dependencies=[page_requires(Permission.USERS_MANAGE)])
def admin() -> FileResponse:
    return _page("admin.html")


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
