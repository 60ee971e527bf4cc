"""Evidence: attach snapshots and clips to a case, list and read items, export a bundle.

Reading an item's bytes is logged in the case's custody log and the audit log (``view``,
or ``download`` with ``?download=true``), whatever range is asked for: once per session or
API token and item within a minute (:mod:`surveillance.cases.reads`), so a video player's
range requests while it plays are one view, and ``Range: bytes=1-`` is no way around it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import tempfile
import time
from collections.abc import Coroutine, Iterator
from datetime import datetime
from typing import IO, Annotated, Any, BinaryIO
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from surveillance.api.deps import AccessDep, AuditDep, Auditor, CasesDep, RecordingsDep
from surveillance.api.forward import forwarder_of, owner_elsewhere, owner_only, to_owner
from surveillance.api.guards import requires
from surveillance.api.schemas.base import ItemRef
from surveillance.api.schemas.cases import (
    MAX_CLIP_POST_S,
    CaseErrorOut,
    ClipIn,
    CustodyOut,
    ItemOut,
    NodeKeyOut,
    SnapshotIn,
)
from surveillance.api.schemas.recordings import ClipResultOut, ClipsIn, ClipsOut
from surveillance.auth.audit import AuditAction
from surveillance.auth.principal import Principal
from surveillance.auth.roles import Permission
from surveillance.cases.bundle import EXTENSIONS
from surveillance.cases.errors import AttachCameraUnavailable
from surveillance.cases.records import ItemRecord
from surveillance.errors import CameraUnavailable, Forbidden, InvalidRequest, SurveillanceError
from surveillance.services.footage_times import epoch, iso
from surveillance.services.recordings import RecordingsService

router = APIRouter(prefix="/api", tags=["evidence"])

CHUNK_BYTES = 256 * 1024
# Older than this, a moment is asked of the recordings, not of the live ring (whose
# length, ingest.ring_seconds, is at most 600 s): needs recordings.view.
RING_REACH_S = 600.0
# One range; at most 18 digits each (any size an item can have; int() of thousands of
# digits raises). Multiple ranges get the whole item (200), which RFC 9110 allows.
_RANGE = re.compile(r"^bytes=(\d{0,18})-(\d{0,18})$")
UNSATISFIABLE = (-1, -1)

Reader = Annotated[Principal, requires(Permission.CASES_READ)]
Attacher = Annotated[Principal, requires(Permission.EVIDENCE_ATTACH)]
Exporter = Annotated[Principal, requires(Permission.EVIDENCE_EXPORT)]

ATTACH_ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": CaseErrorOut, "description": "No such case or camera"},
    409: {"model": CaseErrorOut, "description": "Case closed or archived; nothing in window"},
    503: {"model": CaseErrorOut, "description": "Camera offline; nothing stored"},
    507: {"model": CaseErrorOut, "description": "Disk full; nothing stored"},
}


async def _audited(
    audit: Auditor,
    principal: Principal,
    action: AuditAction,
    number: str,
    camera_id: str,
    attaching: Coroutine[Any, Any, ItemRecord],
    window: dict[str, str] | None = None,
) -> ItemRecord:
    """Runs an attach, and records it in the audit log whether it worked or not, with the
    footage's window (``at``, ``start``, ``end``) when it is one of the past or a clip: who
    took which camera's footage from when to when."""
    when = window or {}
    try:
        item = await attaching
    except SurveillanceError as exc:
        audit(
            principal.name,
            action,
            camera_id=camera_id,
            outcome="failed",
            case=number,
            status=exc.status_code,
            **when,
        )
        if isinstance(exc, CameraUnavailable):
            raise AttachCameraUnavailable(exc) from exc  # says that nothing was stored
        raise
    audit(
        principal.name,
        action,
        camera_id=camera_id,
        case=number,
        item=item.id,
        sha256=item.sha256,
        **when,
    )
    return item


def _clip_window(at: datetime | None, pre_s: float, post_s: float) -> dict[str, str]:
    """The clip's window as asked (``at`` now when not given), ISO like every audit entry."""
    moment = time.time() if at is None else at.timestamp()
    return {"at": iso(moment), "start": iso(moment - pre_s), "end": iso(moment + post_s)}


@router.post(
    "/cases/{number}/items/snapshot",
    response_model=ItemOut,
    status_code=201,
    responses=ATTACH_ERRORS,
    summary="Attach a camera's picture now",
)
async def attach_snapshot(
    request: Request,
    number: str,
    body: SnapshotIn,
    cases: CasesDep,
    recorded: RecordingsDep,
    access: AccessDep,
    audit: AuditDep,
    principal: Attacher,
) -> ItemOut | Response:
    access.camera(principal, body.camera)
    at = None if body.at is None else epoch("at", body.at)
    if owner_only(request, at, RING_REACH_S):  # the owner takes it from its ring
        forwarded = await to_owner(request, body.camera)
        if forwarded is not None:
            return forwarded
    if body.at is not None:
        if not principal.can(Permission.RECORDINGS_VIEW):
            raise Forbidden("a picture of the past needs recordings.view")
        await asyncio.to_thread(recorded.checked_moment, body.camera, epoch("at", body.at))
    attaching = cases.attach_snapshot(number, body.camera, principal.name, at=body.at)
    action = AuditAction.EVIDENCE_SNAPSHOT
    # A picture of the past: its moment is the window (start = end = at).
    moment = None if body.at is None else _clip_window(body.at, 0.0, 0.0)
    item = await _audited(audit, principal, action, number, body.camera, attaching, moment)
    return ItemOut.model_validate(item)


@router.post(
    "/cases/{number}/items/clip",
    response_model=ItemOut,
    status_code=201,
    responses=ATTACH_ERRORS,
    summary="Attach a clip from `at - pre_s` to `at + post_s`, remuxed, not re-encoded",
    description="From the live ring while it holds the window's start, else from the "
    "recordings: `at` may lie anywhere inside retention (a clip older than the ring needs "
    "recordings.view), the window up to recording.max_export_s.",
)
async def attach_clip(
    request: Request,
    number: str,
    body: ClipIn,
    cases: CasesDep,
    recorded: RecordingsDep,
    access: AccessDep,
    audit: AuditDep,
    principal: Attacher,
) -> ItemOut | Response:
    access.camera(principal, body.camera)
    if _from_owner(request, body.at):
        forwarded = await to_owner(request, body.camera, wait_s=min(body.post_s, MAX_CLIP_POST_S))
        if forwarded is not None:
            return forwarded
    await asyncio.to_thread(
        _check_clip, recorded, principal, body.camera, body.at, body.pre_s, body.post_s
    )
    window = _clip_window(body.at, body.pre_s, body.post_s)
    attaching = cases.attach_clip(
        number, body.camera, principal.name, at=body.at, pre_s=body.pre_s, post_s=body.post_s
    )
    action = AuditAction.EVIDENCE_CLIP
    item = await _audited(audit, principal, action, number, body.camera, attaching, window)
    return ItemOut.model_validate(item)


def _from_owner(request: Request, at: datetime | None) -> bool:
    """Whether a clip at ``at`` may need the live ring (only the camera's owner has it)."""
    return owner_only(request, None if at is None else epoch("at", at), RING_REACH_S)


def _check_clip(
    recorded: RecordingsService,
    principal: Principal,
    camera_id: str,
    at: datetime | None,
    pre_s: float,
    post_s: float,
) -> None:
    """422 for a clip window that makes no sense, lies outside retention, is longer than
    recording.max_export_s or would wait more than MAX_CLIP_POST_S for its end; 403 for a
    moment older than the ring without recordings.view. Blocking: it asks the index."""
    if pre_s + post_s <= 0:
        raise InvalidRequest("pre_s + post_s must be more than zero")
    now = time.time()
    moment = now if at is None else epoch("at", at)
    if moment < now - RING_REACH_S and not principal.can(Permission.RECORDINGS_VIEW):
        raise Forbidden("a clip of the past needs recordings.view")
    names = ("at - pre_s", "at + post_s")
    recorded.checked(
        camera_id, moment - pre_s, moment + post_s, names=names, future_end_allowed=True
    )
    if moment + post_s > now + MAX_CLIP_POST_S:
        raise InvalidRequest(
            f"`at + post_s` lies more than {MAX_CLIP_POST_S:.0f} s ahead: a clip waits at "
            "most that long for footage still to come"
        )


@router.post(
    "/cases/{number}/items/clips",
    response_model=ClipsOut,
    responses=ATTACH_ERRORS,
    summary="Attach the same window of several cameras, one clip each",
    description="Each camera's clip is attached on its own (one custody entry each); one "
    "that fails is reported with its status and reason and does not undo the others. The "
    "window and the cameras are checked for all before any is taken.",
)
async def attach_clips(
    request: Request,
    number: str,
    body: ClipsIn,
    cases: CasesDep,
    recorded: RecordingsDep,
    access: AccessDep,
    audit: AuditDep,
    principal: Attacher,
) -> ClipsOut:
    cameras = list(dict.fromkeys(body.camera_ids))  # each camera once, in the order asked
    for camera_id in cameras:
        access.camera(principal, camera_id)
        await asyncio.to_thread(
            _check_clip, recorded, principal, camera_id, body.at, body.pre_s, body.post_s
        )
    await asyncio.to_thread(cases.get, number)  # 404 once, not once per camera

    window = _clip_window(body.at, body.pre_s, body.post_s)

    async def one(camera_id: str) -> ClipResultOut:
        owner = owner_elsewhere(request, camera_id) if _from_owner(request, body.at) else None
        if owner is not None:  # that camera's clip is cut by the node holding it
            return await _clip_on(request, owner, number, camera_id, body)
        attaching = cases.attach_clip(
            number, camera_id, principal.name, at=body.at, pre_s=body.pre_s, post_s=body.post_s
        )
        action = AuditAction.EVIDENCE_CLIP
        try:
            item = await _audited(audit, principal, action, number, camera_id, attaching, window)
        except SurveillanceError as exc:
            error = CaseErrorOut(detail=str(exc), case=number, camera=camera_id)
            return ClipResultOut(camera=camera_id, status=exc.status_code, item=None, error=error)
        out = ItemOut.model_validate(item)
        return ClipResultOut(camera=camera_id, status=201, item=out, error=None)

    results = await asyncio.gather(*(one(camera_id) for camera_id in cameras))
    return ClipsOut(case=number, results=list(results))


async def _clip_on(
    request: Request, owner: tuple[str, str], number: str, camera_id: str, body: ClipsIn
) -> ClipResultOut:
    """One camera's clip of ``body`` attached by the node holding the camera (its own
    ``items/clip`` route: audited and fenced there), as a result of the batch."""
    one = ClipIn(camera=camera_id, at=body.at, pre_s=body.pre_s, post_s=body.post_s)
    path = f"/api/cases/{quote(number, safe='')}/items/clip"
    try:
        status, data = await forwarder_of(request).exchange(
            request, *owner, path, one.model_dump_json().encode(), wait_s=body.post_s
        )
        if status == 201:
            item = ItemOut.model_validate_json(data)
            return ClipResultOut(camera=camera_id, status=201, item=item, error=None)
        detail = str(json.loads(data).get("detail", "refused")) if data else "refused"
    except SurveillanceError as exc:
        status, detail = exc.status_code, str(exc)
    except (ValueError, AttributeError):
        detail = "the node holding the camera gave an answer that is not JSON"
    error = CaseErrorOut(detail=detail, case=number, camera=camera_id)
    return ClipResultOut(camera=camera_id, status=status, item=None, error=error)


@router.get("/cases/{number}/items", response_model=list[ItemOut], summary="A case's evidence")
def list_items(number: str, cases: CasesDep, access: AccessDep, principal: Reader) -> list[ItemOut]:
    return [ItemOut.model_validate(i) for i in access.items(principal, cases.items(number))]


@router.get(
    "/cases/{number}/items/{ref}",
    response_model=ItemOut,
    summary="One item's facts, by id or SHA-256",
)
def get_item(
    number: str, ref: ItemRef, cases: CasesDep, access: AccessDep, principal: Reader
) -> ItemOut:
    return ItemOut.model_validate(access.item(principal, cases.item(number, ref), ref))


@router.get(
    "/cases/{number}/items/{ref}/content",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "video/mp4": {}}}, 206: {}, 416: {}},
    summary="An item's bytes (logged as a view, or a download)",
)
def item_content(
    number: str,
    ref: ItemRef,
    request: Request,
    cases: CasesDep,
    access: AccessDep,
    audit: AuditDep,
    principal: Reader,
    download: Annotated[bool, Query(description="Save as a file (logged as a download)")] = False,
) -> Response:
    item = access.item(principal, cases.item(number, ref), ref)
    byte_range = _byte_range(request.headers.get("range"), item.size)
    if byte_range == UNSATISFIABLE:
        # No byte is read: nothing to log.
        return Response(status_code=416, headers={"Content-Range": f"bytes */{item.size}"})
    reader = principal.session_hash or f"token:{principal.token_id}"
    handle, logged = cases.open_item(item, principal.name, download=download, reader=reader)
    if logged:
        audit(
            principal.name,
            AuditAction.EVIDENCE_DOWNLOAD if download else AuditAction.EVIDENCE_VIEW,
            camera_id=item.camera_id,
            case=number,
            item=item.id,
        )
    return _send(handle, item, byte_range, download)


@router.head(
    "/cases/{number}/items/{ref}/content", response_class=Response, include_in_schema=False
)
def item_content_head(
    number: str,
    ref: ItemRef,
    request: Request,
    cases: CasesDep,
    access: AccessDep,
    principal: Reader,
    download: bool = False,
) -> Response:
    """The content's headers (size, type, hash) without its bytes: a player or a download
    manager asks before it reads. No byte is read, so nothing is logged."""
    item = access.item(principal, cases.item(number, ref), ref)
    byte_range = _byte_range(request.headers.get("range"), item.size)
    if byte_range == UNSATISFIABLE:
        return Response(status_code=416, headers={"Content-Range": f"bytes */{item.size}"})
    status, headers = _content_headers(item, byte_range, download)
    return Response(status_code=status, headers=headers)


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The first and last byte to send, None for the whole item, :data:`UNSATISFIABLE`
    for a range the item cannot serve. ``bytes=-500`` is the last 500 bytes."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match:
        return None  # several ranges, or not one we read: the whole item
    first, last = match.groups()
    if first == "":
        if last == "":
            return None
        length = int(last)
        if length == 0 or size == 0:
            return UNSATISFIABLE
        return max(0, size - length), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None  # an invalid range is ignored: the whole item (RFC 9110, 14.1.1)
    if start >= size:
        return UNSATISFIABLE
    return start, min(end, size - 1)


def _content_headers(
    item: ItemRecord, byte_range: tuple[int, int] | None, download: bool
) -> tuple[int, dict[str, str]]:
    """The status and headers of an item's content (or of the range asked for)."""
    size = item.size
    name = f"{item.case_number}-{item.id}-{item.kind}.{EXTENSIONS.get(item.media_type, 'bin')}"
    headers = {
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, max-age=31536000, immutable",  # content-addressed
        "ETag": f'"{item.sha256}"',
        "X-Content-SHA256": item.sha256,
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f'{"attachment" if download else "inline"}; filename="{name}"',
        "Content-Type": item.media_type,
    }
    start, end = 0, size - 1
    status = 200
    if byte_range is not None:
        start, end = byte_range
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end - start + 1)
    return status, headers


def _send(
    handle: BinaryIO, item: ItemRecord, byte_range: tuple[int, int] | None, download: bool
) -> Response:
    status, headers = _content_headers(item, byte_range, download)
    start = byte_range[0] if byte_range is not None else 0
    handle.seek(start)
    return StreamingResponse(
        _chunks(handle, int(headers["Content-Length"])),
        status_code=status,
        media_type=item.media_type,
        headers=headers,
    )


def _chunks(handle: IO[bytes], remaining: int) -> Iterator[bytes]:
    with handle:
        while remaining > 0:
            chunk = handle.read(min(CHUNK_BYTES, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk


@router.get("/cases/{number}/custody", response_model=list[CustodyOut], summary="The custody log")
def custody_log(
    number: str, cases: CasesDep, access: AccessDep, principal: Reader
) -> list[CustodyOut]:
    entries = access.custody(principal, number, cases.custody(number))
    return [CustodyOut.model_validate(e) for e in entries]


@router.get(
    "/cases/{number}/export.zip",
    response_class=Response,
    responses={
        200: {"content": {"application/zip": {}}},
        409: {"model": CaseErrorOut, "description": "The case changed on every attempt"},
        500: {"model": CaseErrorOut, "description": "Evidence missing; logged as failed"},
        507: {"model": CaseErrorOut, "description": "Disk full; logged as failed"},
    },
    summary="A signed case bundle (logged as an export once written, or as failed)",
)
def export_case(
    number: str, cases: CasesDep, access: AccessDep, audit: AuditDep, principal: Exporter
) -> Response:
    refusal = access.export_refusal(principal, number)
    if refusal is not None:
        audit(principal.name, AuditAction.CASE_EXPORT, outcome="denied", case=number)
        raise refusal
    # An anonymous temporary file: bundles can be large, and it vanishes when closed.
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - the response closes it when sent
    try:
        cases.export(number, principal.name, spool)
        size = spool.tell()
        spool.seek(0)
    except SurveillanceError as exc:
        spool.close()
        audit(
            principal.name,
            AuditAction.CASE_EXPORT,
            outcome="failed",
            case=number,
            status=exc.status_code,
            reason=str(exc),
        )
        raise
    except BaseException:
        spool.close()
        raise
    audit(principal.name, AuditAction.CASE_EXPORT, case=number, bytes=size)
    return StreamingResponse(
        _chunks(spool, size),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="case-{number}.zip"',
            "Content-Length": str(size),
        },
    )


@router.get("/node/key", response_model=NodeKeyOut, summary="The node's signing key")
def node_key(cases: CasesDep, principal: Reader) -> NodeKeyOut:
    key = cases.key
    return NodeKeyOut(
        algorithm="ed25519",
        fingerprint=key.fingerprint,
        public_key=base64.b64encode(key.public_raw).decode(),
        node=cases.node_name,
    )
