"""Cases: create, list and filter, read, edit, move through the workflow, comment."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from surveillance.api.deps import AccessDep, CasesDep
from surveillance.api.guards import requires
from surveillance.api.schemas.cases import (
    CaseDetailOut,
    CaseIn,
    CaseOut,
    CasePageOut,
    CasePatch,
    CommentIn,
    StatesOut,
    TimelineOut,
    TransitionIn,
)
from surveillance.auth.principal import Principal
from surveillance.auth.roles import Permission
from surveillance.cases.records import CaseFilter
from surveillance.cases.states import OPEN_STATES, TRANSITIONS, CaseState
from surveillance.errors import InvalidRequest

router = APIRouter(prefix="/api", tags=["cases"])

MAX_PAGE = 200

Reader = Annotated[Principal, requires(Permission.CASES_READ)]
Writer = Annotated[Principal, requires(Permission.CASES_WRITE)]


def _split(values: list[str] | None) -> tuple[str, ...]:
    out: list[str] = []
    for value in values or []:
        out.extend(part.strip() for part in value.split(",") if part.strip())
    return tuple(dict.fromkeys(out))


@router.get("/cases/states", response_model=StatesOut, summary="The case workflow")
def case_states(principal: Reader) -> StatesOut:
    return StatesOut(
        states=[s.value for s in CaseState],
        transitions={s.value: [t.value for t in TRANSITIONS[s]] for s in CaseState},
        open_states=[s.value for s in OPEN_STATES],
    )


@router.post("/cases", response_model=CaseOut, status_code=201, summary="Report a case")
def create_case(body: CaseIn, cases: CasesDep, access: AccessDep, principal: Writer) -> CaseOut:
    access.check_references(principal, body.tags, body.cameras)
    case = cases.create(
        title=body.title,
        description=body.description,
        place=body.place,
        tags=body.tags,
        cameras=body.cameras,
        reporter=principal.name,
        assignee=body.assignee,
    )
    return CaseOut.model_validate(case)


@router.get("/cases", response_model=CasePageOut, summary="List and filter cases")
def list_cases(
    cases: CasesDep,
    access: AccessDep,
    principal: Reader,
    state: Annotated[
        list[CaseState] | None, Query(description="Any of these states (repeat)")
    ] = None,
    open: Annotated[bool | None, Query(description="Only open (true) or finished (false)")] = None,
    tag: Annotated[list[str] | None, Query(description="Any of these zone tags")] = None,
    camera: Annotated[list[str] | None, Query(description="Linked to any of these")] = None,
    assignee: Annotated[str | None, Query(max_length=128)] = None,
    reporter: Annotated[str | None, Query(max_length=128)] = None,
    q: Annotated[
        str | None, Query(max_length=200, description="Text in number, title, text, place")
    ] = None,
    created_from: Annotated[datetime | None, Query(description="Created at or after")] = None,
    created_to: Annotated[datetime | None, Query(description="Created before")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,  # SQL takes a 64-bit int
) -> CasePageOut:
    states = tuple(state or ())
    if open is not None:
        wanted = set(OPEN_STATES) if open else set(CaseState) - set(OPEN_STATES)
        states = tuple(s for s in (states or tuple(CaseState)) if s in wanted)
        if not states:
            return CasePageOut(total=0, limit=limit, offset=offset, cases=[])
    for moment in (created_from, created_to):
        if moment is not None and moment.tzinfo is None:
            raise InvalidRequest("created_from and created_to need a time zone")
        if moment is not None and not _in_utc_range(moment):
            raise InvalidRequest(
                "created_from and created_to must lie between years 1 and 9999 in UTC"
            )
    seen = access.case_search_cameras(principal, _split(camera))
    if seen is None:  # asking about cameras outside the scope finds nothing
        return CasePageOut(total=0, limit=limit, offset=offset, cases=[])
    page = cases.search(
        CaseFilter(
            states=states,
            tags=_split(tag),
            cameras=seen,
            assignee=assignee,
            reporter=reporter,
            text=q or None,
            created_from=created_from,
            created_to=created_to,
            limit=limit,
            offset=offset,
        )
    )
    return CasePageOut(
        total=page.total,
        limit=limit,
        offset=offset,
        cases=[CaseOut.model_validate(access.case(principal, c)) for c in page.cases],
    )


@router.get("/cases/{number}", response_model=CaseDetailOut, summary="A case with its timeline")
def get_case(number: str, cases: CasesDep, access: AccessDep, principal: Reader) -> CaseDetailOut:
    return CaseDetailOut.of(access.case_detail(principal, cases.get(number)))


@router.patch("/cases/{number}", response_model=CaseOut, summary="Edit a case's fields")
def edit_case(
    number: str, body: CasePatch, cases: CasesDep, access: AccessDep, principal: Writer
) -> CaseOut:
    access.check_references(principal, body.tags, body.cameras)
    given = body.model_fields_set
    case = cases.update(
        number,
        principal.name,
        title=body.title,
        description=body.description,
        tags=body.tags,
        cameras=access.case_cameras_after_edit(principal, number, body.cameras),
        **{name: getattr(body, name) for name in ("place", "assignee") if name in given},
    )
    return CaseOut.model_validate(access.case(principal, case))


@router.post(
    "/cases/{number}/transitions", response_model=CaseOut, summary="Move a case to a new state"
)
def transition(
    number: str, body: TransitionIn, cases: CasesDep, access: AccessDep, principal: Writer
) -> CaseOut:
    case = cases.transition(
        number, body.to, principal.name, comment=body.comment, assignee=body.assignee
    )
    return CaseOut.model_validate(access.case(principal, case))


@router.post(
    "/cases/{number}/comments",
    response_model=TimelineOut,
    status_code=201,
    summary="Comment on a case",
)
def comment(number: str, body: CommentIn, cases: CasesDep, principal: Writer) -> TimelineOut:
    return TimelineOut.model_validate(cases.comment(number, principal.name, body.text))


def _in_utc_range(moment: datetime) -> bool:
    """Whether the moment is a date in UTC too: 9999-12-31T23:59-23:59 is not, and the
    database would fail to store the comparison value."""
    try:
        moment.astimezone(UTC)
    except OverflowError:
        return False
    return True
