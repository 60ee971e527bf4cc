"""How errors reach the client: every :class:`SurveillanceError` becomes its own status with
``{"detail": message}`` (and ``Retry-After`` where waiting helps), in one place.

Routes raise; they never turn an exception into a status themselves. A camera without a
picture also names the camera, its state and the reason, so a wall tile can say why.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from surveillance.api.schemas.cameras import UnavailableOut
from surveillance.auth.passwords import WeakPassword
from surveillance.auth.store import AuthError, UnknownUser, UserExists
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


async def _auth_error(request: Request, exc: Exception) -> JSONResponse:
    # AuthError derives from ValueError (auth/store.py); it is mapped here, by its own
    # classes, so no route catches a ValueError to guess its status.
    status = 404 if isinstance(exc, UnknownUser) else 409 if isinstance(exc, UserExists) else 422
    return JSONResponse({"detail": str(exc)}, status_code=status)


def install(app: FastAPI) -> None:
    app.add_exception_handler(SurveillanceError, _surveillance_error)
    app.add_exception_handler(AuthError, _auth_error)
    app.add_exception_handler(WeakPassword, _auth_error)
