"""Recorded footage of a camera: spans and gaps, an MP4 export, fMP4 windows for playback.

Every route needs ``recordings.view`` and the camera in the caller's scope; watching and
exporting are audited with the window asked for. Times are ISO 8601 with a time zone and
are read and checked in one place (``services/footage_times.py``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import IO, Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from surveillance.api.deps import AccessDep, AuditDep, Auditor, ExportsDep, RecordingsDep
from surveillance.api.forward import owner_only, to_owner
from surveillance.api.guards import requires
from surveillance.api.schemas.cameras import RecordingStateOut
from surveillance.api.schemas.recordings import GapOut, RecordingsOut, SpanOut
from surveillance.auth.audit import AuditAction
from surveillance.auth.principal import Principal
from surveillance.auth.roles import Permission
from surveillance.errors import SurveillanceError
from surveillance.services.export_budget import ExportBudget, ExportSlot
from surveillance.services.footage_times import iso, parse_moment
from surveillance.services.recordings import PLAY_DEFAULT_S, PLAY_MAX_S, RecordingsService

router = APIRouter(prefix="/api", tags=["recordings"])

Watcher = Annotated[Principal, requires(Permission.RECORDINGS_VIEW)]
Moment = Annotated[str, Query(max_length=64, description="ISO 8601 with a time zone")]

CHUNK_BYTES = 256 * 1024
LIST_MAX_S = 31 * 86400.0  # the longest listing: a month of a timeline
ERRORS: dict[int | str, dict[str, object]] = {
    404: {"description": "Unknown camera (or outside your scope)"},
    409: {"description": "Nothing recorded in the window"},
    422: {"description": "A time that does not parse, lacks a zone, lies ahead, "
          "is reversed, too long, or outside retention"},
}  # fmt: skip


@router.get(
    "/cameras/{camera_id}/recordings",
    response_model=RecordingsOut,
    responses=ERRORS,
    summary="Recorded spans and gaps (with reasons) of a camera between two moments",
)
async def list_recordings(
    request: Request,
    camera_id: str,
    recordings: RecordingsDep,
    access: AccessDep,
    principal: Watcher,
    from_: Annotated[str, Query(alias="from", max_length=64, description="ISO 8601, zoned")],
    to: Moment,
    stream: Annotated[str | None, Query(pattern="^(main|sub)$")] = None,
) -> RecordingsOut | Response:
    access.camera(principal, camera_id)
    start, end = parse_moment("from", from_), parse_moment("to", to)
    forwarded = await _owner_if_recent(request, camera_id, end)
    if forwarded is not None:
        return forwarded
    return await asyncio.to_thread(_listing, recordings, camera_id, start, end, stream)


async def _owner_if_recent(request: Request, camera_id: str, end: float) -> Response | None:
    """The owner's answer for a window reaching into the segment it is writing (which only
    its recorder knows); None: this node reads the shared recordings itself."""
    return await to_owner(request, camera_id) if owner_only(request, end) else None


def _listing(
    recordings: RecordingsService, camera_id: str, start: float, end: float, stream: str | None
) -> RecordingsOut:
    span = recordings.listing_window(camera_id, start, end, LIST_MAX_S)
    listing = recordings.listing(camera_id, span, stream)
    status = listing.recording
    return RecordingsOut(
        camera_id=camera_id,
        from_=listing.start,
        to=listing.end,
        spans=[SpanOut.model_validate(s) for s in listing.spans],
        gaps=[GapOut.model_validate(g) for g in listing.gaps],
        recording=None if status is None else RecordingStateOut.model_validate(status),
    )


@router.get(
    "/cameras/{camera_id}/recordings/export.mp4",
    response_class=Response,
    responses={
        200: {"content": {"video/mp4": {}}},
        **ERRORS,
        429: {"description": "You, or the node, run as many exports as allowed (limits)"},
    },
    summary="One MP4 of recorded footage, from the keyframe at or before `start` to `end`",
)
async def export_recording(
    request: Request,
    camera_id: str,
    recordings: RecordingsDep,
    access: AccessDep,
    audit: AuditDep,
    exports: ExportsDep,
    principal: Watcher,
    start: Moment,
    end: Moment,
) -> Response:
    access.camera(principal, camera_id)
    first, last = parse_moment("start", start), parse_moment("end", end)
    forwarded = await _owner_if_recent(request, camera_id, last)
    if forwarded is not None:
        return forwarded
    return await asyncio.to_thread(
        _export, recordings, audit, exports, principal, camera_id, first, last
    )


def _export(
    recordings: RecordingsService,
    audit: Auditor,
    exports: ExportBudget,
    principal: Principal,
    camera_id: str,
    first: float,
    last: float,
) -> Response:
    span = recordings.checked(camera_id, first, last)
    window = {"start": iso(span.start), "end": iso(span.end)}
    slot = exports.claim(principal.name)  # 429 beyond limits.exports(_per_user)
    try:
        facts = recordings.export(camera_id, span, slot.path)
        out = slot.path.open("rb")
    except BaseException as exc:
        slot.release()
        if isinstance(exc, SurveillanceError):
            audit(
                principal.name,
                AuditAction.RECORDINGS_EXPORT,
                camera_id=camera_id,
                outcome="failed",
                status=exc.status_code,
                **window,
            )
        raise
    size = os.fstat(out.fileno()).st_size
    audit(principal.name, AuditAction.RECORDINGS_EXPORT, camera_id=camera_id, bytes=size, **window)
    stamp = iso(facts.first_at).replace(":", "")
    headers = {
        "Content-Disposition": f'attachment; filename="{camera_id}-{stamp}.mp4"',
        "Content-Length": str(size),
        "X-First-At": iso(facts.first_at),
        "X-Duration-S": f"{facts.duration_s:.3f}",
    }
    if facts.note:
        headers["X-Note"] = facts.note
    return StreamingResponse(_chunks(out, size, slot), media_type="video/mp4", headers=headers)


def _chunks(handle: IO[bytes], remaining: int, slot: ExportSlot) -> Iterator[bytes]:
    """The file in chunks; the export keeps its place (and its file) until it is sent, or
    the client went away and the generator is closed."""
    try:
        with handle:
            while remaining > 0:
                chunk = handle.read(min(CHUNK_BYTES, remaining))
                if not chunk:
                    return
                remaining -= len(chunk)
                yield chunk
    finally:
        slot.release()


@router.get(
    "/cameras/{camera_id}/recordings/play.mp4",
    response_class=Response,
    responses={200: {"content": {"video/mp4": {}}}, **ERRORS},
    summary="Recorded footage as fragmented MP4 for a player (at most 120 s a request)",
)
async def play_recording(
    request: Request,
    camera_id: str,
    recordings: RecordingsDep,
    access: AccessDep,
    audit: AuditDep,
    principal: Watcher,
    start: Moment,
    end: Annotated[str | None, Query(max_length=64, description="Default: start + 30 s")] = None,
) -> Response:
    access.camera(principal, camera_id)
    first = parse_moment("start", start)
    last = first + PLAY_DEFAULT_S if end is None else parse_moment("end", end)
    forwarded = await _owner_if_recent(request, camera_id, last)
    if forwarded is not None:
        return forwarded
    return await asyncio.to_thread(_play, recordings, audit, principal, camera_id, first, last)


def _play(
    recordings: RecordingsService,
    audit: Auditor,
    principal: Principal,
    camera_id: str,
    first: float,
    last: float,
) -> Response:
    limit = (PLAY_MAX_S, "one playback request covers at most 120 s")
    span = recordings.checked(camera_id, first, last, max_s=limit, future_end_allowed=True)
    played = recordings.playback(camera_id, span)
    audit(
        principal.name,
        AuditAction.RECORDINGS_PLAY,
        camera_id=camera_id,
        start=iso(span.start),
        end=iso(span.end),
    )
    return Response(
        played.data,
        media_type="video/mp4",
        headers={
            "Cache-Control": "no-store",
            "X-Codec": played.codecs,
            "X-First-At": iso(played.first_at),
            "X-End-At": iso(played.end_at),
        },
    )
