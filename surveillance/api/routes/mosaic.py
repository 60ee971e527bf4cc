"""Server-side mosaics: a layout rendered into one picture, as MJPEG, WebRTC or a snapshot.

``{layout}`` is a stored layout's name, or a preset (``2x2``, ``1+5``, ...) filled with
``?cameras=a,b,c``. ``size`` is 1080 (1920x1080) or 2160 (3840x2160).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from surveillance.api.deps import NodeDep
from surveillance.api.guards import audit, requires, sees_camera
from surveillance.api.node import Node
from surveillance.auth.principal import Principal
from surveillance.auth.roles import Permission
from surveillance.errors import CameraNotFound
from surveillance.services.mosaic import (
    DEFAULT_FPS,
    MAX_FPS,
    MosaicLayoutNotFound,
    MosaicLease,
    MosaicRequest,
)

router = APIRouter(prefix="/api/mosaic", tags=["mosaic"])

MAX_SDP_BYTES = 64_000
MJPEG_BOUNDARY = "mosaicframe"
FRAME_WAIT_S = 5.0  # how long a reader waits for the next composed picture
SNAPSHOT_WAIT_S = 3.0  # a cold mosaic's tiles start from their cached GOPs: usually < 0.5 s

# Strings: a query value arrives as text, and an int Literal would not accept "1080".
SizeQuery = Annotated[Literal["1080", "2160"], Query(description="1080 or 2160 lines")]
FpsQuery = Annotated[int, Query(ge=1, le=MAX_FPS, description="Frames per second")]
CamerasQuery = Annotated[
    str | None,
    Query(max_length=4096, description="For a preset: camera ids, comma-separated, in order"),
]


class MosaicOfferIn(BaseModel):
    sdp: str = Field(max_length=MAX_SDP_BYTES)


class MosaicAnswerOut(BaseModel):
    type: Literal["answer"] = "answer"
    sdp: str


Viewer = Annotated[Principal, requires(Permission.LIVE_VIEW)]


def _request(layout: str, cameras: str | None, size: str, fps: int) -> MosaicRequest:
    ids = tuple(c.strip() for c in (cameras or "").split(",") if c.strip())
    return MosaicRequest(layout=layout, cameras=ids, size=int(size), fps=fps)


def _permitted(node: Node, principal: Principal, request: MosaicRequest) -> list[str]:
    """The mosaic's camera ids, if the principal may see every one of them.

    A camera named outside the scope is "not found", as everywhere; a stored layout that
    shows such cameras is refused as a whole rather than drawn with holes."""
    try:
        grid = node.mosaic.resolve(request)
    except (MosaicLayoutNotFound, CameraNotFound) as exc:
        raise HTTPException(404, str(exc)) from exc
    shown = [t.camera for t in grid.tiles if t.camera]
    for camera_id in shown:
        if sees_camera(node, principal, camera_id):
            continue
        if camera_id in request.cameras:
            raise HTTPException(404, f"no camera with id {camera_id!r}")
        raise HTTPException(403, "this layout shows cameras outside your scope")
    return shown


def _audit_view(connection: Request, principal: Principal, cameras: list[str], action: str) -> None:
    for camera_id in cameras:
        audit(connection, principal.name, action, camera_id=camera_id, path="mosaic")


def _acquire(node: Node, request: MosaicRequest) -> MosaicLease:
    try:
        return node.mosaic.acquire(request)
    except (MosaicLayoutNotFound, CameraNotFound) as exc:
        raise HTTPException(404, str(exc)) from exc


@router.get(
    "/{layout}.mjpeg",
    response_class=StreamingResponse,
    responses={200: {"content": {f"multipart/x-mixed-replace; boundary={MJPEG_BOUNDARY}": {}}}},
)
async def mjpeg(
    layout: str,
    node: NodeDep,
    principal: Viewer,
    request: Request,
    size: SizeQuery = "1080",
    fps: FpsQuery = DEFAULT_FPS,
    cameras: CamerasQuery = None,
) -> StreamingResponse:
    """Motion JPEG: each part is the newest picture when the client is ready for one, so a
    slow client gets fewer frames, never older ones."""
    mosaic = _request(layout, cameras, size, fps)
    shown = _permitted(node, principal, mosaic)
    lease = _acquire(node, mosaic)
    _audit_view(request, principal, shown, "live.start")

    def ended() -> None:
        _audit_view(request, principal, shown, "live.stop")

    return StreamingResponse(
        _mjpeg_parts(lease, ended),
        media_type=f"multipart/x-mixed-replace; boundary={MJPEG_BOUNDARY}",
        headers={"Cache-Control": "no-store"},
    )


async def _mjpeg_parts(lease: MosaicLease, ended: Callable[[], None]) -> AsyncIterator[bytes]:
    seq = 0
    try:
        while True:
            found = await asyncio.to_thread(lease.renderer.jpeg, seq, FRAME_WAIT_S)
            if found is None:
                if not lease.renderer.running:
                    return
                continue
            seq, jpeg = found
            head = (
                f"--{MJPEG_BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                f"Content-Length: {len(jpeg)}\r\n\r\n"
            )
            yield head.encode("ascii") + jpeg + b"\r\n"
    finally:
        lease.release()
        ended()


@router.get(
    "/{layout}/snapshot.jpg",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}},
        503: {"description": "The mosaic produced no picture in time"},
    },
)
async def snapshot(
    layout: str,
    node: NodeDep,
    principal: Annotated[Principal, requires(Permission.SNAPSHOT_TAKE)],
    request: Request,
    size: SizeQuery = "1080",
    fps: FpsQuery = DEFAULT_FPS,
    cameras: CamerasQuery = None,
) -> Response:
    """One composed picture; the mosaic stays warm for a while for the next request."""
    mosaic = _request(layout, cameras, size, fps)
    shown = _permitted(node, principal, mosaic)
    _audit_view(request, principal, shown, "snapshot")
    with _acquire(node, mosaic) as lease:
        jpeg = await asyncio.to_thread(lease.renderer.snapshot_jpeg, SNAPSHOT_WAIT_S, FRAME_WAIT_S)
    if jpeg is None:
        raise HTTPException(503, "the mosaic produced no picture in time")
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.post(
    "/{layout}/webrtc",
    response_model=MosaicAnswerOut,
    responses={503: {"description": "No WebRTC session could be set up now"}},
)
async def webrtc(
    layout: str,
    body: MosaicOfferIn,
    node: NodeDep,
    principal: Viewer,
    request: Request,
    size: SizeQuery = "1080",
    fps: FpsQuery = DEFAULT_FPS,
    cameras: CamerasQuery = None,
) -> MosaicAnswerOut:
    """Answer a browser's receive-only offer with the mosaic as H.264 (no trickle ICE)."""
    mosaic = _request(layout, cameras, size, fps)
    shown = _permitted(node, principal, mosaic)

    def ended() -> None:
        _audit_view(request, principal, shown, "live.stop")

    try:
        sdp = await node.mosaic.webrtc_answer(mosaic, body.sdp, on_end=ended)
    except (MosaicLayoutNotFound, CameraNotFound) as exc:
        raise HTTPException(404, str(exc)) from exc
    except ValueError as exc:
        raise HTTPException(400, f"bad offer: {exc}") from exc
    except RuntimeError as exc:
        raise HTTPException(503, str(exc)) from exc
    _audit_view(request, principal, shown, "live.start")
    return MosaicAnswerOut(sdp=sdp)
