"""Holds: a case keeps a camera's window of recorded footage from retention.

Retention never removes a segment that overlaps an active hold. A hold lasts until it is
released by hand or the case is archived (the case service's archive hook); placing and
releasing are audited (``recordings.hold``, ``recordings.release``).
"""

from __future__ import annotations

import asyncio
import functools
from typing import Annotated

from fastapi import APIRouter

from surveillance.api.deps import AccessDep, AuditDep, CasesDep, RecordingsDep
from surveillance.api.guards import requires
from surveillance.api.schemas.base import NumericId
from surveillance.api.schemas.cases import CaseErrorOut
from surveillance.api.schemas.recordings import HoldIn, HoldOut
from surveillance.auth.audit import AuditAction
from surveillance.auth.principal import Principal
from surveillance.auth.roles import Permission
from surveillance.cases.errors import CaseConflict
from surveillance.cases.service import CaseService
from surveillance.cases.states import CaseState
from surveillance.services.footage_times import epoch
from surveillance.services.recordings import hold_detail

router = APIRouter(prefix="/api", tags=["evidence"])

Reader = Annotated[Principal, requires(Permission.CASES_READ)]
Attacher = Annotated[Principal, requires(Permission.EVIDENCE_ATTACH)]

# A hold may reach back as far as footage is kept; its length is bounded so that one
# request cannot pin a camera's whole disk share (retention still honours it all).
MAX_HOLD_S = 7 * 86400.0


def _case_taking_holds(cases: CaseService, number: str) -> None:
    state = cases.get(number).case.state
    if state is CaseState.ARCHIVED:
        raise CaseConflict(number, state.value, "an archived case places no holds")


@router.post(
    "/cases/{number}/holds",
    response_model=HoldOut,
    status_code=201,
    responses={
        404: {"model": CaseErrorOut, "description": "No such case or camera"},
        409: {"model": CaseErrorOut, "description": "The case is archived"},
        422: {"description": "A window without a zone, reversed, too long, outside retention"},
    },
    summary="Keep a camera's window of recordings from retention while the case lives",
)
async def place_hold(
    number: str,
    body: HoldIn,
    cases: CasesDep,
    recorded: RecordingsDep,
    access: AccessDep,
    audit: AuditDep,
    principal: Attacher,
) -> HoldOut:
    access.camera(principal, body.camera_id)
    await asyncio.to_thread(_case_taking_holds, cases, number)
    start, end = epoch("start", body.start), epoch("end", body.end)
    limit = (MAX_HOLD_S, "a hold lasts at most 7 days")
    span = await asyncio.to_thread(
        functools.partial(recorded.checked, max_s=limit, future_end_allowed=True),
        body.camera_id,
        start,
        end,
    )
    held = await asyncio.to_thread(recorded.hold, number, body.camera_id, span, principal.name)
    audit(
        principal.name, AuditAction.RECORDINGS_HOLD, camera_id=held.camera_id, **hold_detail(held)
    )
    return HoldOut.model_validate(held)


@router.get("/cases/{number}/holds", response_model=list[HoldOut], summary="A case's holds")
def list_holds(
    number: str, cases: CasesDep, recorded: RecordingsDep, access: AccessDep, principal: Reader
) -> list[HoldOut]:
    cases.get(number)  # 404 for a case that does not exist
    return [
        HoldOut.model_validate(h)
        for h in recorded.holds(number)
        if access.sees_camera(principal, h.camera_id)
    ]


@router.delete(
    "/cases/{number}/holds/{hold_id}",
    response_model=HoldOut,
    responses={404: {"model": CaseErrorOut, "description": "No such case or hold"}},
    summary="Release a hold: retention may remove its footage again",
)
def release_hold(
    number: str,
    hold_id: NumericId,
    recorded: RecordingsDep,
    access: AccessDep,
    audit: AuditDep,
    principal: Attacher,
) -> HoldOut:
    hold = recorded.hold_of(number, hold_id)
    access.camera(principal, hold.camera_id)
    released = recorded.release(number, hold_id, principal.name)
    audit(
        principal.name,
        AuditAction.RECORDINGS_RELEASE,
        camera_id=released.camera_id,
        **hold_detail(released),
    )
    return HoldOut.model_validate(released)
