"""Routes that serve the pages, and the security headers every response carries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(str(resources.files("surveillance.web") / "static"))

# No inline script or style, nothing from elsewhere; media from blob: URLs (MSE) only.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
def index() -> RedirectResponse:
    return RedirectResponse("/wall")


@router.get("/wall")
@router.get("/wall/{layout}")
def wall(layout: str | None = None) -> FileResponse:
    # The page reads the layout name from its own URL; the server sends the same file.
    return FileResponse(STATIC_DIR / "wall.html", headers={"Cache-Control": "no-cache"})


@router.get("/cases")
def cases() -> FileResponse:
    return FileResponse(STATIC_DIR / "cases.html", headers={"Cache-Control": "no-cache"})


@router.get("/cases/{number}")
def case(number: str) -> FileResponse:
    # As with the wall: the page reads the case number from its own URL.
    return FileResponse(STATIC_DIR / "case.html", headers={"Cache-Control": "no-cache"})


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response
