"""Cases: create, list and filter, read, edit, move through the workflow, comment."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from surveillance.api.case_errors import case_errors
from surveillance.api.case_schemas import (
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
from surveillance.api.case_scope import camera_seen, scoped_case, scoped_detail
from surveillance.api.deps import NodeDep
from surveillance.api.guards import requires, sees_camera
from surveillance.api.node import Node
from surveillance.auth.principal import Principal
from surveillance.auth.roles import Permission
from surveillance.cases.records import CaseFilter
from surveillance.cases.states import OPEN_STATES, TRANSITIONS, CaseState

router = APIRouter(prefix="/api", tags=["cases"])

MAX_PAGE = 200

Reader = Annotated[Principal, requires(Permission.CASES_READ)]
Writer = Annotated[Principal, requires(Permission.CASES_WRITE)]


def _split(values: list[str] | None) -> tuple[str, ...]:
    out: list[str] = []
    for value in values or []:
        out.extend(part.strip() for part in value.split(",") if part.strip())
    return tuple(dict.fromkeys(out))


def _check_references(
    node: Node, principal: Principal, tags: list[str] | None, cameras: list[str] | None
) -> None:
    unknown_tags = [t for t in tags or [] if t not in node.catalog.tags]
    unknown_cameras = [c for c in cameras or [] if not sees_camera(node, principal, c)]
    if unknown_tags:
        raise HTTPException(422, f"unknown tag(s): {', '.join(unknown_tags)}")
    if unknown_cameras:
        raise HTTPException(422, f"unknown camera(s): {', '.join(unknown_cameras)}")


@router.get("/cases/states", response_model=StatesOut, summary="The case workflow")
def case_states(principal: Reader) -> StatesOut:
    return StatesOut(
        states=[s.value for s in CaseState],
        transitions={s.value: [t.value for t in TRANSITIONS[s]] for s in CaseState},
        open_states=[s.value for s in OPEN_STATES],
    )


@router.post("/cases", response_model=CaseOut, status_code=201, summary="Report a case")
def create_case(body: CaseIn, node: NodeDep, principal: Writer) -> CaseOut:
    _check_references(node, principal, body.tags, body.cameras)
    case = node.cases.create(
        title=body.title,
        description=body.description,
        place=body.place,
        tags=body.tags,
        cameras=body.cameras,
        reporter=principal.name,
        assignee=body.assignee,
    )
    return CaseOut.of(case)


@router.get("/cases", response_model=CasePageOut, summary="List and filter cases")
def list_cases(
    node: NodeDep,
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
            raise HTTPException(422, "created_from and created_to need a time zone")
    cameras = _split(camera)
    seen = tuple(c for c in cameras if camera_seen(node, principal, c, None))
    if cameras and not seen:  # asking about cameras outside the scope finds nothing
        return CasePageOut(total=0, limit=limit, offset=offset, cases=[])
    page = node.cases.search(
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
        cases=[CaseOut.of(scoped_case(node, principal, c)) for c in page.cases],
    )


@router.get("/cases/{number}", response_model=CaseDetailOut, summary="A case with its timeline")
def get_case(number: str, node: NodeDep, principal: Reader) -> CaseDetailOut:
    with case_errors():
        detail = node.cases.get(number)
    return CaseDetailOut.of_detail(scoped_detail(node, principal, detail))


@router.patch("/cases/{number}", response_model=CaseOut, summary="Edit a case's fields")
def edit_case(number: str, body: CasePatch, node: NodeDep, principal: Writer) -> CaseOut:
    _check_references(node, principal, body.tags, body.cameras)
    given = body.model_fields_set
    cameras = body.cameras
    with case_errors():
        if cameras is not None and principal.scope.limited:
            # A scoped user edits the cameras they see; the others stay linked.
            current = node.cases.get(number).case.cameras
            hidden = [c for c in current if not camera_seen(node, principal, c, None)]
            cameras = hidden + [c for c in cameras if c not in hidden]
        case = node.cases.update(
            number,
            principal.name,
            title=body.title,
            description=body.description,
            tags=body.tags,
            cameras=cameras,
            **{name: getattr(body, name) for name in ("place", "assignee") if name in given},
        )
    return CaseOut.of(scoped_case(node, principal, case))


@router.post(
    "/cases/{number}/transitions", response_model=CaseOut, summary="Move a case to a new state"
)
def transition(number: str, body: TransitionIn, node: NodeDep, principal: Writer) -> CaseOut:
    with case_errors():
        case = node.cases.transition(
            number, body.to, principal.name, comment=body.comment, assignee=body.assignee
        )
    return CaseOut.of(scoped_case(node, principal, case))


@router.post(
    "/cases/{number}/comments",
    response_model=TimelineOut,
    status_code=201,
    summary="Comment on a case",
)
def comment(number: str, body: CommentIn, node: NodeDep, principal: Writer) -> TimelineOut:
    with case_errors():
        return TimelineOut.of(node.cases.comment(number, principal.name, body.text))
