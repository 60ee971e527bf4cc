"""Server-side mosaics: a layout rendered into one picture, as MJPEG, WebRTC or a snapshot.

``{layout}`` is a stored layout's name, or a preset (``2x2``, ``1+5``, ...) filled with
``?cameras=a,b,c``. ``size`` is 1080 (1920x1080) or 2160 (3840x2160).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from surveillance.api.deps import AccessDep, AuditDep, Auditor, LiveViewsDep, MosaicDep
from surveillance.api.guards import authenticate, requires
from surveillance.api.schemas.live import AnswerOut, MosaicOfferIn
from surveillance.auth.audit import AuditAction
from surveillance.auth.principal import Principal
from surveillance.auth.roles import Permission
from surveillance.errors import Unavailable
from surveillance.services.access import Access
from surveillance.services.live_sessions import (
    LiveView,
    LiveViews,
    ViewKind,
    peer_owner,
)
from surveillance.services.mosaic import (
    DEFAULT_FPS,
    MAX_FPS,
    MosaicLease,
    MosaicRequest,
    MosaicService,
)

router = APIRouter(prefix="/api/mosaic", tags=["mosaic"])

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


Viewer = Annotated[Principal, requires(Permission.LIVE_VIEW)]


def _request(layout: str, cameras: str | None, size: str, fps: int) -> MosaicRequest:
    ids = tuple(c.strip() for c in (cameras or "").split(",") if c.strip())
    return MosaicRequest(layout=layout, cameras=ids, size=int(size), fps=fps)


async def _permitted(
    mosaics: MosaicService, access: Access, principal: Principal, request: MosaicRequest
) -> list[str]:
    """The mosaic's camera ids, if the principal may see every one of them (the stored
    layout is read off the event loop)."""
    grid = await mosaics.grid(request)
    return access.mosaic_cameras(principal, grid, request.cameras)


def _audit_view(
    audit: Auditor,
    principal: Principal,
    cameras: list[str],
    action: AuditAction,
    reason: str | None = None,
) -> None:
    detail = {} if reason is None else {"reason": reason}
    for camera_id in cameras:
        audit(principal.name, action, camera_id=camera_id, path="mosaic", **detail)


def _open_view(
    views: LiveViews, request: Request, principal: Principal, shown: list[str]
) -> LiveView:
    """Register a mosaic viewer (TooManyMosaics at the user's limit); the request's own
    credential is looked up again while it watches."""
    return views.open(ViewKind.MOSAIC, principal, functools.partial(authenticate, request), shown)


@router.get(
    "/{layout}.mjpeg",
    response_class=StreamingResponse,
    responses={
        200: {"content": {f"multipart/x-mixed-replace; boundary={MJPEG_BOUNDARY}": {}}},
        429: {"description": "Too many mosaics for this user or this node"},
    },
)
async def mjpeg(
    request: Request,
    layout: str,
    mosaics: MosaicDep,
    views: LiveViewsDep,
    access: AccessDep,
    audit: AuditDep,
    principal: Viewer,
    size: SizeQuery = "1080",
    fps: FpsQuery = DEFAULT_FPS,
    cameras: CamerasQuery = None,
) -> StreamingResponse:
    """Motion JPEG: each part is the newest picture when the client is ready for one, so a
    slow client gets fewer frames, never older ones. The stream ends when the viewer's
    sign-in or access to any camera shown does."""
    mosaic = _request(layout, cameras, size, fps)
    shown = await _permitted(mosaics, access, principal, mosaic)
    view = _open_view(views, request, principal, shown)
    try:
        lease = await mosaics.lease(mosaic)
    except BaseException:
        views.close(view)
        raise
    _audit_view(audit, principal, shown, AuditAction.LIVE_START)

    def ended() -> None:
        views.close(view)
        _audit_view(audit, principal, shown, AuditAction.LIVE_STOP, view.stop_reason)

    return StreamingResponse(
        _mjpeg_parts(lease, view, ended),
        media_type=f"multipart/x-mixed-replace; boundary={MJPEG_BOUNDARY}",
        headers={"Cache-Control": "no-store"},
    )


async def _mjpeg_parts(
    lease: MosaicLease, view: LiveView, ended: Callable[[], None]
) -> AsyncIterator[bytes]:
    seq = 0
    access_ended = asyncio.Event()

    async def stop(_reason: str) -> None:
        access_ended.set()

    view.stop = stop
    if view.ended_because is not None:  # ended before the first part
        access_ended.set()
    try:
        while not access_ended.is_set():
            found = await asyncio.to_thread(lease.renderer.jpeg, seq, FRAME_WAIT_S)
            if found is None:
                if not lease.renderer.running:
                    return
                continue
            seq, jpeg = found
            if access_ended.is_set():  # ended while this picture was awaited: not shown
                return
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
    mosaics: MosaicDep,
    access: AccessDep,
    audit: AuditDep,
    principal: Annotated[Principal, requires(Permission.SNAPSHOT_TAKE)],
    size: SizeQuery = "1080",
    fps: FpsQuery = DEFAULT_FPS,
    cameras: CamerasQuery = None,
) -> Response:
    """One composed picture; the mosaic stays warm for a while for the next request."""
    mosaic = _request(layout, cameras, size, fps)
    shown = await _permitted(mosaics, access, principal, mosaic)
    _audit_view(audit, principal, shown, AuditAction.SNAPSHOT)
    with await mosaics.lease(mosaic) as lease:
        jpeg = await asyncio.to_thread(lease.renderer.snapshot_jpeg, SNAPSHOT_WAIT_S, FRAME_WAIT_S)
    if jpeg is None:
        raise Unavailable("the mosaic produced no picture in time")
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.post(
    "/{layout}/webrtc",
    response_model=AnswerOut,
    responses={
        400: {"description": "An offer this service cannot answer"},
        429: {"description": "Too many mosaics or viewers waiting to connect"},
        503: {"description": "No WebRTC session could be set up now"},
    },
)
async def webrtc(
    request: Request,
    layout: str,
    body: MosaicOfferIn,
    mosaics: MosaicDep,
    views: LiveViewsDep,
    access: AccessDep,
    audit: AuditDep,
    principal: Viewer,
    size: SizeQuery = "1080",
    fps: FpsQuery = DEFAULT_FPS,
    cameras: CamerasQuery = None,
) -> AnswerOut:
    """Answer a browser's receive-only offer with the mosaic as H.264 (no trickle ICE).
    The viewer ends when its sign-in or access to any camera shown does."""
    mosaic = _request(layout, cameras, size, fps)
    shown = await _permitted(mosaics, access, principal, mosaic)
    view = _open_view(views, request, principal, shown)

    def ended() -> None:
        views.close(view)
        _audit_view(audit, principal, shown, AuditAction.LIVE_STOP, view.stop_reason)

    answering = mosaics.webrtc_answer(mosaic, body.sdp, on_end=ended, owner=peer_owner(principal))
    answer = await views.answered(view, answering)
    _audit_view(audit, principal, shown, AuditAction.LIVE_START)
    return AnswerOut(sdp=answer.sdp)
