"""How errors reach the client: every :class:`SurveillanceError` becomes its own status with
``{"detail": message}`` (and ``Retry-After`` where waiting helps), in one place.

Routes raise; they never turn an exception into a status themselves. A camera without a
picture also names the camera, its state and the reason, so a wall tile can say why.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from surveillance.api.schemas.cameras import UnavailableOut
from surveillance.errors import CameraUnavailable, SurveillanceError


def _headers(exc: SurveillanceError) -> dict[str, str] | None:
    return None if exc.retry_after_s is None else {"Retry-After": str(exc.retry_after_s)}


async def _surveillance_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SurveillanceError)
    body: dict[str, object] = {"detail": str(exc)}
    if isinstance(exc, CameraUnavailable):
        body = UnavailableOut(
            detail=str(exc), camera=exc.camera_id, state=exc.state, reason=exc.reason
        ).model_dump()
    return JSONResponse(body, status_code=exc.status_code, headers=_headers(exc))


def install(app: FastAPI) -> None:
    app.add_exception_handler(SurveillanceError, _surveillance_error)
