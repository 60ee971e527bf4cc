"""How errors reach the client: every :class:`SurveillanceError` becomes its own status with
``{"detail": message}`` (and ``Retry-After`` where waiting helps), in one place.

Routes raise; they never turn an exception into a status themselves. A camera without a
picture also names the camera, its state and the reason, so a wall tile can say why; the
reason names no stream URL for who may not see stream URLs (it comes from FFmpeg, which
quotes the URL it was given).

A request that fails validation gets 422 naming where and why, never what was sent:
FastAPI's own answer echoes each wrong value (a 300 MB body came back as 300 MB, and a NaN,
which its JSON encoder refuses, turned the answer into a 500 with a traceback).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from surveillance.api.deps import node_of
from surveillance.api.schemas.cameras import UnavailableOut, shown_error
from surveillance.auth.principal import Principal
from surveillance.errors import CameraUnavailable, SurveillanceError


def _headers(exc: SurveillanceError) -> dict[str, str] | None:
    return None if exc.retry_after_s is None else {"Retry-After": str(exc.retry_after_s)}


def _sees_stream_urls(request: Request) -> bool:
    # The principal the route's guard authenticated (none: a public route, or refused).
    principal: Principal | None = getattr(request.state, "principal", None)
    return principal is not None and node_of(request).access.sees_stream_urls(principal)


async def _surveillance_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SurveillanceError)
    body: dict[str, object] = {"detail": str(exc)}
    if isinstance(exc, CameraUnavailable):
        show_urls = exc.reason is not None and _sees_stream_urls(request)
        reason = shown_error(exc.reason, show_urls=show_urls)
        detail = str(exc)
        if exc.reason and reason != exc.reason:
            detail = detail.replace(exc.reason, reason or "")  # the message quotes it
        body = UnavailableOut(
            detail=detail,
            camera=exc.camera_id,
            state=exc.state,
            reason=reason,
        ).model_dump()
    return JSONResponse(body, status_code=exc.status_code, headers=_headers(exc))


# Bounds on a 422 answer: its size must not grow with what the client sent.
MAX_REPORTED_ERRORS = 20
MAX_LOC_PART_CHARS = 64  # a location may name a key the client chose (an unknown field)
MAX_MESSAGE_CHARS = 200


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _safe_error(error: dict[str, Any]) -> dict[str, Any]:
    """One validation error as ``loc``, ``msg`` and ``type`` (what the pages read): no
    ``input`` and no ``ctx``, which hold the value sent or parts of it."""
    loc = [
        part if isinstance(part, int) else _clip(str(part), MAX_LOC_PART_CHARS)
        for part in error.get("loc", ())
    ]
    return {
        "loc": loc,
        "msg": _clip(str(error.get("msg", "")), MAX_MESSAGE_CHARS),
        "type": str(error.get("type", "")),
    }


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    detail = [_safe_error(error) for error in errors[:MAX_REPORTED_ERRORS]]
    if len(errors) > MAX_REPORTED_ERRORS:
        detail.append(
            {"loc": [], "msg": f"and {len(errors) - MAX_REPORTED_ERRORS} more", "type": "more"}
        )
    return JSONResponse({"detail": detail}, status_code=422)


def install(app: FastAPI) -> None:
    app.add_exception_handler(SurveillanceError, _surveillance_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
