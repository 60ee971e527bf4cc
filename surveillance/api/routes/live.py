"""Live video for browsers: path planning, WebRTC signalling, fragmented MP4 over WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Coroutine
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request, Response, WebSocket

from surveillance.api.deps import AccessDep, AuditDep, LiveDep, LiveViewsDep, node_of
from surveillance.api.forward import to_node, to_owner, was_forwarded
from surveillance.api.guards import WS_POLICY_VIOLATION, authenticate, requires
from surveillance.api.mse_relay import relay, relay_target
from surveillance.api.schemas.cameras import UnavailableOut, shown_error
from surveillance.api.schemas.live import AnswerOut, OfferIn, PlanIn, PlanOut
from surveillance.api.ticket_guard import TICKET_PARAM, MseGuard, credential_of, recheck_of
from surveillance.auth.audit import AuditAction
from surveillance.auth.principal import Principal
from surveillance.auth.roles import Permission
from surveillance.errors import CameraNotFound, CameraUnavailable, NotFound
from surveillance.services.live import BrowserCaps, DeliveryPath, Purpose
from surveillance.services.live_sessions import LiveView, ViewKind, peer_owner

router = APIRouter(prefix="/api/live", tags=["live"])

Viewer = Annotated[Principal, requires(Permission.LIVE_VIEW)]
# A viewer id handed out for another node's page names this node: `<node>.<id>`.
NODE_SEPARATOR = "."
MAX_VIEWER_CHARS = 100  # a node id (64) and a view id (22)


@router.post("/plan", response_model=PlanOut, responses={503: {"model": UnavailableOut}})
async def plan(
    request: Request, body: PlanIn, live: LiveDep, access: AccessDep, principal: Viewer
) -> PlanOut | Response:
    """Which delivery path this camera takes to this browser, and why. A camera another
    node holds is planned there (``node``), with its own fMP4 URL (``mse_url``)."""
    access.camera(principal, body.camera)
    forwarded = await to_owner(request, body.camera)
    if forwarded is not None:
        return forwarded
    caps = BrowserCaps(body.caps.webrtc_h264, body.caps.mse_avc, body.caps.mse_hevc)
    avoid = frozenset(DeliveryPath(path) for path in body.avoid)
    result = await live.plan(body.camera, body.stream == "sub", caps, Purpose(body.purpose), avoid)
    source = result.source
    node, mse_url = None, None
    if was_forwarded(request):  # a page on another node: it gets our node and a ticket
        node, mse_url = _remote_mse(request, principal, body.camera, body.stream, result.path)
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
        node=node,
        mse_url=mse_url,
    )


def _remote_mse(
    request: Request, principal: Principal, camera: str, stream: str, path: DeliveryPath
) -> tuple[str | None, str | None]:
    """This node's id, and for an fMP4 plan the WebSocket URL with a ticket for the page."""
    cluster = node_of(request).config.cluster
    credential = credential_of(request)
    if path != DeliveryPath.MSE or cluster.url is None or credential is None:
        return cluster.node_id, None
    ticket = node_of(request).mse_tickets.mint(principal.user.id, camera, stream, credential)
    base = cluster.url.rstrip("/").replace("http", "ws", 1)  # http -> ws, https -> wss
    query = urlencode({"camera": camera, "stream": stream, TICKET_PARAM: ticket})
    return cluster.node_id, f"{base}/api/live/mse?{query}"


@router.post(
    "/webrtc",
    response_model=AnswerOut,
    responses={400: {"description": "An offer this service cannot answer"},
               409: {"description": "Pass-through of a source WebRTC cannot carry (H.265)"},
               429: {"description": "Too many transcodes or viewers waiting to connect"},
               503: {"model": UnavailableOut}},
)  # fmt: skip
async def webrtc(
    request: Request,
    body: OfferIn,
    live: LiveDep,
    views: LiveViewsDep,
    access: AccessDep,
    audit: AuditDep,
    principal: Viewer,
) -> AnswerOut | Response:
    """Answer a browser's receive-only offer (all ICE candidates in the SDP, no trickle).
    The viewer ends when its sign-in or its access to the camera does. A camera another
    node holds is answered by that node (its candidates: media flows from it directly)."""
    access.camera(principal, body.camera)
    forwarded = await to_owner(request, body.camera)
    if forwarded is not None:
        return forwarded
    kind = ViewKind.TRANSCODE if body.transcode else ViewKind.WEBRTC
    # The request's own credential, looked up again while the viewer watches.
    view = views.open(kind, principal, functools.partial(authenticate, request), [body.camera])

    def ended() -> None:
        views.close(view)
        audit(principal.name, AuditAction.LIVE_STOP, camera_id=body.camera, path=kind.value,
              reason=view.stop_reason)  # fmt: skip

    answering = live.webrtc_answer(
        body.camera,
        body.stream == "sub",
        body.sdp,
        transcode=body.transcode,
        on_end=ended,
        owner=peer_owner(principal),
    )
    answer = await views.answered(view, answering)
    audit(principal.name, AuditAction.LIVE_START, camera_id=body.camera, path=kind.value)
    viewer = view.id
    if was_forwarded(request):  # the page ends it through the node it came from
        viewer = f"{node_of(request).config.cluster.node_id}{NODE_SEPARATOR}{view.id}"
    return AnswerOut(sdp=answer.sdp, viewer=viewer)


@router.delete(
    "/webrtc/{viewer}", status_code=204, responses={404: {"description": "No such viewer of yours"}}
)
async def leave(
    request: Request,
    viewer: Annotated[str, Path(max_length=MAX_VIEWER_CHARS)],
    views: LiveViewsDep,
    principal: Viewer,
) -> Response:
    """End one of your WebRTC viewers now: a page sends this when it replaces a player
    or is closed, so that its transcode slot is free for the next page at once. A viewer
    named `<node>.<id>` lives on that node, which is asked to end it."""
    node_id, _, local_id = viewer.rpartition(NODE_SEPARATOR)
    if node_id and node_id != node_of(request).config.cluster.node_id:
        if node_of(request).config.cluster.enabled:
            return await to_node(request, node_id)
        local_id = ""  # no other nodes: no such viewer
    if not local_id or not await views.leave(local_id, principal.user.id):
        raise NotFound("no such live viewer of yours (it may have ended already)")
    return Response(status_code=204)


@router.websocket("/mse")
async def mse(
    websocket: WebSocket,
    live: LiveDep,
    views: LiveViewsDep,
    access: AccessDep,
    audit: AuditDep,
    principal: Annotated[Principal, Depends(MseGuard())],
    camera: Annotated[str, Query(max_length=64)],
    stream: Annotated[Literal["main", "sub"], Query()] = "main",
) -> None:
    """Fragmented MP4: a JSON text message with the MIME type before each init segment,
    then binary messages (init segment, then one media segment per frame).

    A failure before the first segment is told in the stream itself (a JSON error message,
    then close 1011): a WebSocket has no status to carry it once accepted. When the
    viewer's sign-in or access to the camera ends, the socket is closed with 1008 (policy
    violation) and the reason. ``ticket`` (from a plan another node forwarded here) stands
    for the sign-in, once, from the page of a live cluster node. Without a ticket, a
    camera another node holds is relayed from it (api/mse_relay.py): the page's fallback
    when it cannot reach that node itself."""
    target = None
    if TICKET_PARAM not in websocket.query_params:  # a ticket is the owner's, used there
        target = relay_target(websocket, camera, stream)
    if target is not None:
        await relay(websocket, *target)
        return
    await websocket.accept()
    watching = False
    view: LiveView | None = None

    def started() -> None:
        nonlocal watching
        watching = True
        audit(principal.name, AuditAction.LIVE_START, camera_id=camera, path="mse")

    try:
        access.camera(principal, camera)
        # The connection's own credential, looked up again while the viewer watches.
        view = views.open(ViewKind.MSE, principal, recheck_of(websocket), [camera])
        await _serve_until_access_ends(
            view, live.serve_mse(camera, stream == "sub", websocket, on_start=started)
        )
    except (CameraNotFound, CameraUnavailable) as exc:
        # As in every 503 body: a stream URL in the reason is for those who may read it.
        detail = shown_error(str(exc), show_urls=access.sees_stream_urls(principal))
        await websocket.send_json({"type": "error", "detail": detail})
        await websocket.close(code=1011)
        return
    finally:
        if view is not None:
            views.close(view)
        if watching:  # a viewer cut off by shutdown stopped watching too
            audit(principal.name, AuditAction.LIVE_STOP, camera_id=camera, path="mse",
                  reason=view.stop_reason if view else "viewer left")  # fmt: skip
    with contextlib.suppress(RuntimeError):  # the viewer may have closed it already
        if view is not None and view.ended_because is not None:
            # A close reason is at most 123 bytes (RFC 6455, 5.5.1).
            reason = view.ended_because.encode()[:123].decode(errors="ignore")
            await websocket.close(code=WS_POLICY_VIOLATION, reason=reason)
        else:
            await websocket.close()


async def _serve_until_access_ends(view: LiveView, serving: Coroutine[Any, Any, None]) -> None:
    """Run ``serving`` until it ends or ``view`` is ended by the access re-check; its own
    errors (camera not found or unavailable) are raised."""
    task = asyncio.create_task(serving)

    async def stop(_reason: str) -> None:
        task.cancel()

    view.stop = stop
    try:
        await asyncio.wait([task])
    finally:
        task.cancel()  # this handler was cancelled (shutdown): so is the sending
    if not task.cancelled():
        task.result()
