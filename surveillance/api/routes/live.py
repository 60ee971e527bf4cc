"""Live video for browsers: path planning, WebRTC signalling, fragmented MP4 over WebSocket."""

from __future__ import annotations

import contextlib
import logging
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, WebSocket
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from surveillance.api.deps import NodeDep, get_node
from surveillance.api.guards import audit, requires, visible_camera
from surveillance.api.schemas import UnavailableOut
from surveillance.auth.principal import Principal
from surveillance.auth.roles import Permission
from surveillance.errors import CameraNotFound, CameraUnavailable
from surveillance.services.live import BrowserCaps

router = APIRouter(prefix="/api/live", tags=["live"])
log = logging.getLogger(__name__)

MAX_SDP_BYTES = 64_000

Viewer = Annotated[Principal, requires(Permission.LIVE_VIEW)]


class CapsIn(BaseModel):
    webrtc_h264: bool = Field(description="RTCRtpReceiver reports H.264")
    mse_avc: bool = Field(description="MediaSource accepts avc1 (H.264) in MP4")
    mse_hevc: bool = Field(description="MediaSource accepts hvc1/hev1 (H.265) in MP4")


class PlanIn(BaseModel):
    camera: str
    stream: Literal["main", "sub"] = "main"
    caps: CapsIn


class PlanOut(BaseModel):
    camera: str
    stream: str
    path: str = Field(description="webrtc, mse or transcode")
    reason: str
    codec: str
    b_frames: bool
    codec_string: str | None
    mime: str | None
    width: int
    height: int


class OfferIn(BaseModel):
    camera: str
    stream: Literal["main", "sub"] = "main"
    sdp: str = Field(max_length=MAX_SDP_BYTES)
    transcode: bool = False


class AnswerOut(BaseModel):
    type: Literal["answer"] = "answer"
    sdp: str


def _unavailable(exc: CameraUnavailable) -> JSONResponse:
    body = UnavailableOut(detail=str(exc), camera=exc.camera_id, state=exc.state, reason=exc.reason)
    return JSONResponse(body.model_dump(), status_code=503)


@router.post("/plan", response_model=PlanOut, responses={503: {"model": UnavailableOut}})
async def plan(body: PlanIn, node: NodeDep, principal: Viewer) -> PlanOut | JSONResponse:
    """Which delivery path this camera takes to this browser, and why."""
    visible_camera(node, principal, body.camera)
    caps = BrowserCaps(body.caps.webrtc_h264, body.caps.mse_avc, body.caps.mse_hevc)
    try:
        result = await node.live.plan(body.camera, body.stream == "sub", caps)
    except CameraNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except CameraUnavailable as exc:
        return _unavailable(exc)
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


@router.post("/webrtc", response_model=AnswerOut, responses={503: {"model": UnavailableOut}})
async def webrtc(
    body: OfferIn, node: NodeDep, principal: Viewer, request: Request
) -> AnswerOut | JSONResponse:
    """Answer a browser's receive-only offer (all ICE candidates in the SDP, no trickle)."""
    visible_camera(node, principal, body.camera)
    path = "transcode" if body.transcode else "webrtc"

    def ended() -> None:
        audit(request, principal.name, "live.stop", camera_id=body.camera, path=path)

    try:
        sdp = await node.live.webrtc_answer(
            body.camera, body.stream == "sub", body.sdp, transcode=body.transcode, on_end=ended
        )
    except CameraNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except CameraUnavailable as exc:
        return _unavailable(exc)
    except ValueError as exc:
        raise HTTPException(400, f"bad offer: {exc}") from exc
    audit(request, principal.name, "live.start", camera_id=body.camera, path=path)
    return AnswerOut(sdp=sdp)


@router.websocket("/mse")
async def mse(
    websocket: WebSocket,
    principal: Viewer,
    camera: Annotated[str, Query(max_length=64)],
    stream: Annotated[Literal["main", "sub"], Query()] = "main",
) -> None:
    """Fragmented MP4: a JSON text message with the MIME type before each init segment,
    then binary messages (init segment, then one media segment per frame)."""
    node = get_node(websocket)  # type: ignore[arg-type]
    await websocket.accept()
    try:
        visible_camera(node, principal, camera)
    except HTTPException as exc:
        detail = exc.detail
        await websocket.send_json({"type": "error", "detail": detail})
        await websocket.close(code=1011)
        return
    watching = False

    def started() -> None:
        nonlocal watching
        watching = True
        audit(websocket, principal.name, "live.start", camera_id=camera, path="mse")

    try:
        await node.live.serve_mse(camera, stream == "sub", websocket, on_start=started)
    except (CameraNotFound, CameraUnavailable) as exc:
        await websocket.send_json({"type": "error", "detail": str(exc)})
        await websocket.close(code=1011)
        return
    finally:
        if watching:  # a viewer cut off by shutdown stopped watching too
            audit(websocket, principal.name, "live.stop", camera_id=camera, path="mse")
    with contextlib.suppress(RuntimeError):  # the viewer may have closed it already
        await websocket.close()
