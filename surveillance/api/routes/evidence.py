"""Evidence: attach snapshots and clips to a case, list and read items, export a bundle.

Reading an item's bytes is logged in the case's custody log (``view``, or ``download``
with ``?download=true``); a video player's follow-up range requests are not logged again.
"""

from __future__ import annotations

import base64
import re
import tempfile
import time
from collections.abc import Coroutine, Iterator
from typing import IO, Annotated, Any, BinaryIO

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse

from surveillance.api.case_errors import case_errors
from surveillance.api.case_schemas import (
    CaseErrorOut,
    ClipIn,
    CustodyOut,
    ItemOut,
    NodeKeyOut,
    SnapshotIn,
)
from surveillance.api.case_scope import (
    hidden_items,
    item_seen,
    require_item_seen,
    scoped_custody,
)
from surveillance.api.deps import NodeDep
from surveillance.api.guards import audit, requires, visible_camera
from surveillance.auth.principal import Principal
from surveillance.auth.roles import Permission
from surveillance.cases.bundle import EXTENSIONS
from surveillance.cases.records import ItemRecord

router = APIRouter(prefix="/api", tags=["evidence"])

CHUNK_BYTES = 256 * 1024
MAX_FUTURE_S = 5.0  # a clip's `at` may lie this far ahead of the server clock
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")

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
    request: Request,
    principal: Principal,
    action: str,
    number: str,
    camera_id: str,
    attaching: Coroutine[Any, Any, ItemRecord],
) -> ItemRecord:
    """Runs an attach, and records it in the audit log whether it worked or not."""
    try:
        with case_errors():
            item = await attaching
    except HTTPException as exc:
        audit(
            request,
            principal.name,
            action,
            camera_id=camera_id,
            outcome="failed",
            case=number,
            status=exc.status_code,
        )
        raise
    audit(
        request,
        principal.name,
        action,
        camera_id=camera_id,
        case=number,
        item=item.id,
        sha256=item.sha256,
    )
    return item


@router.post(
    "/cases/{number}/items/snapshot",
    response_model=ItemOut,
    status_code=201,
    responses=ATTACH_ERRORS,
    summary="Attach a camera's picture now",
)
async def attach_snapshot(
    number: str, body: SnapshotIn, node: NodeDep, principal: Attacher, request: Request
) -> ItemOut:
    visible_camera(node, principal, body.camera)
    attaching = node.cases.attach_snapshot(number, body.camera, principal.name)
    item = await _audited(request, principal, "evidence.snapshot", number, body.camera, attaching)
    return ItemOut.of(item)


@router.post(
    "/cases/{number}/items/clip",
    response_model=ItemOut,
    status_code=201,
    responses=ATTACH_ERRORS,
    summary="Attach a clip from `at - pre_s` to `at + post_s`, remuxed, not re-encoded",
)
async def attach_clip(
    number: str, body: ClipIn, node: NodeDep, principal: Attacher, request: Request
) -> ItemOut:
    visible_camera(node, principal, body.camera)
    if body.pre_s + body.post_s <= 0:
        raise HTTPException(422, "pre_s + post_s must be more than zero")
    if body.at is not None:
        if body.at.tzinfo is None:
            raise HTTPException(422, "`at` needs a time zone")
        if body.at.timestamp() > time.time() + MAX_FUTURE_S:
            raise HTTPException(422, "`at` lies in the future")
    attaching = node.cases.attach_clip(
        number, body.camera, principal.name, at=body.at, pre_s=body.pre_s, post_s=body.post_s
    )
    item = await _audited(request, principal, "evidence.clip", number, body.camera, attaching)
    return ItemOut.of(item)


@router.get("/cases/{number}/items", response_model=list[ItemOut], summary="A case's evidence")
def list_items(number: str, node: NodeDep, principal: Reader) -> list[ItemOut]:
    with case_errors():
        items = node.cases.items(number)
    return [ItemOut.of(item) for item in items if item_seen(node, principal, item)]


@router.get(
    "/cases/{number}/items/{ref}",
    response_model=ItemOut,
    summary="One item's facts, by id or SHA-256",
)
def get_item(number: str, ref: str, node: NodeDep, principal: Reader) -> ItemOut:
    with case_errors():
        item = node.cases.item(number, ref)
    require_item_seen(node, principal, item, ref)
    return ItemOut.of(item)


@router.get(
    "/cases/{number}/items/{ref}/content",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "video/mp4": {}}}, 206: {}, 416: {}},
    summary="An item's bytes (logged as a view, or a download)",
)
def item_content(
    number: str,
    ref: str,
    request: Request,
    node: NodeDep,
    principal: Reader,
    download: Annotated[bool, Query(description="Save as a file (logged as a download)")] = False,
) -> Response:
    byte_range = _parse_range(request.headers.get("range"))
    with case_errors():
        item = node.cases.item(number, ref)
    require_item_seen(node, principal, item, ref)
    with case_errors():
        if byte_range is not None and byte_range[0] > 0:
            # A player continuing a view: not a new access, not logged again.
            handle = node.cases.open_blob(item)
        else:
            handle = node.cases.open_item(item, principal.name, download=download)
            audit(
                request,
                principal.name,
                "evidence.download" if download else "evidence.view",
                camera_id=item.camera_id,
                case=number,
                item=item.id,
            )
    return _send(handle, item, byte_range, download)


def _parse_range(header: str | None) -> tuple[int, int | None] | None:
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match or match.group(1) == "":
        return None  # suffix or multiple ranges: answer with the whole item
    end = int(match.group(2)) if match.group(2) else None
    return int(match.group(1)), end


def _send(
    handle: BinaryIO, item: ItemRecord, byte_range: tuple[int, int | None] | None, download: bool
) -> Response:
    size = item.size
    name = f"{item.case_number}-{item.id}-{item.kind}.{EXTENSIONS.get(item.media_type, 'bin')}"
    headers = {
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, max-age=31536000, immutable",  # content-addressed
        "ETag": f'"{item.sha256}"',
        "X-Content-SHA256": item.sha256,
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f'{"attachment" if download else "inline"}; filename="{name}"',
    }
    start, end = 0, size - 1
    status = 200
    if byte_range is not None:
        start = byte_range[0]
        end = min(size - 1, byte_range[1] if byte_range[1] is not None else size - 1)
        if start >= size or end < start:
            handle.close()
            return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end - start + 1)
    handle.seek(start)
    return StreamingResponse(
        _chunks(handle, end - start + 1),
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
def custody_log(number: str, node: NodeDep, principal: Reader) -> list[CustodyOut]:
    with case_errors():
        entries = node.cases.custody(number)
    return [CustodyOut.of(e) for e in scoped_custody(node, principal, number, entries)]


@router.get(
    "/cases/{number}/export.zip",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}},
    summary="A signed case bundle (logged as an export)",
)
def export_case(number: str, node: NodeDep, principal: Exporter, request: Request) -> Response:
    with case_errors():
        hidden = hidden_items(node, principal, number)
    if hidden:
        # A bundle is signed as the whole case; a partial one would misrepresent it.
        audit(request, principal.name, "case.export", outcome="denied", case=number)
        raise HTTPException(403, "the case holds evidence outside your scope; ask an admin")
    # An anonymous temporary file: bundles can be large, and it vanishes when closed.
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - the response closes it when sent
    try:
        with case_errors():
            node.cases.export(number, principal.name, spool)
        size = spool.tell()
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    audit(request, principal.name, "case.export", case=number, bytes=size)
    return StreamingResponse(
        _chunks(spool, size),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="case-{number}.zip"',
            "Content-Length": str(size),
        },
    )


@router.get("/node/key", response_model=NodeKeyOut, summary="The node's signing key")
def node_key(node: NodeDep, principal: Reader) -> NodeKeyOut:
    key = node.cases.key
    return NodeKeyOut(
        algorithm="ed25519",
        fingerprint=key.fingerprint,
        public_key=base64.b64encode(key.public_raw).decode(),
        node=node.cases.node_name,
    )
