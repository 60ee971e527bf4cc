"""Live video for browsers: path planning, WebRTC signalling, fragmented MP4 over WebSocket."""

from __future__ import annotations

import contextlib
from typing import Annotated, Literal

from fastapi import APIRouter, Query, WebSocket

from surveillance.api.deps import AccessDep, AuditDep, LiveDep
from surveillance.api.guards import requires
from surveillance.api.schemas.cameras import UnavailableOut
from surveillance.api.schemas.live import AnswerOut, OfferIn, PlanIn, PlanOut
from surveillance.auth.audit import AuditAction
from surveillance.auth.principal import Principal
from surveillance.auth.roles import Permission
from surveillance.errors import CameraNotFound, CameraUnavailable
from surveillance.services.live import BrowserCaps

router = APIRouter(prefix="/api/live", tags=["live"])

Viewer = Annotated[Principal, requires(Permission.LIVE_VIEW)]


@router.post("/plan", response_model=PlanOut, responses={503: {"model": UnavailableOut}})
async def plan(body: PlanIn, live: LiveDep, access: AccessDep, principal: Viewer) -> PlanOut:
    """Which delivery path this camera takes to this browser, and why."""
    access.camera(principal, body.camera)
    caps = BrowserCaps(body.caps.webrtc_h264, body.caps.mse_avc, body.caps.mse_hevc)
    result = await live.plan(body.camera, body.stream == "sub", caps)
    source = result.source
    return PlanOut(
        camera=body.camera,
        stream=body.stream,
        path=result.path.value,
        reason=result.reason,
        codec=source.codec,
        b_frames=source.b_frames,
        codec_string=source.codec_string,
        mime=result.mime,
        width=source.width,
        height=source.height,
    )


@router.post(
    "/webrtc",
    response_model=AnswerOut,
    responses={400: {"description": "An offer this service cannot answer"},
               503: {"model": UnavailableOut}},
)  # fmt: skip
async def webrtc(
    body: OfferIn, live: LiveDep, access: AccessDep, audit: AuditDep, principal: Viewer
) -> AnswerOut:
    """Answer a browser's receive-only offer (all ICE candidates in the SDP, no trickle)."""
    access.camera(principal, body.camera)
    path = "transcode" if body.transcode else "webrtc"

    def ended() -> None:
        audit(principal.name, AuditAction.LIVE_STOP, camera_id=body.camera, path=path)

    sdp = await live.webrtc_answer(
        body.camera, body.stream == "sub", body.sdp, transcode=body.transcode, on_end=ended
    )
    audit(principal.name, AuditAction.LIVE_START, camera_id=body.camera, path=path)
    return AnswerOut(sdp=sdp)


@router.websocket("/mse")
async def mse(
    websocket: WebSocket,
    live: LiveDep,
    access: AccessDep,
    audit: AuditDep,
    principal: Viewer,
    camera: Annotated[str, Query(max_length=64)],
    stream: Annotated[Literal["main", "sub"], Query()] = "main",
) -> None:
    """Fragmented MP4: a JSON text message with the MIME type before each init segment,
    then binary messages (init segment, then one media segment per frame).

    A failure before the first segment is told in the stream itself (a JSON error message,
    then close 1011): a WebSocket has no status to carry it once accepted."""
    await websocket.accept()
    watching = False

    def started() -> None:
        nonlocal watching
        watching = True
        audit(principal.name, AuditAction.LIVE_START, camera_id=camera, path="mse")

    try:
        access.camera(principal, camera)
        await live.serve_mse(camera, stream == "sub", websocket, on_start=started)
    except (CameraNotFound, CameraUnavailable) as exc:
        await websocket.send_json({"type": "error", "detail": str(exc)})
        await websocket.close(code=1011)
        return
    finally:
        if watching:  # a viewer cut off by shutdown stopped watching too
            audit(principal.name, AuditAction.LIVE_STOP, camera_id=camera, path="mse")
    with contextlib.suppress(RuntimeError):  # the viewer may have closed it already
        await websocket.close()
