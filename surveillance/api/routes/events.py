"""Events: the list with filters, one event and its picture, the live stream, acknowledging
and closing, and turning one into a case.

Which events a user sees is the access service's to decide (cameras in scope, and the
platform events of platforms with a camera in scope); an event outside it is "not found"."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Hashable
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from surveillance.api.deps import AccessDep, AlarmCasesDep, AlarmClipsDep, AuditDep, EventBusDep
from surveillance.api.guards import authenticate, requires
from surveillance.api.schemas.base import NumericId
from surveillance.api.schemas.cases import CaseErrorOut, ItemOut
from surveillance.api.schemas.events import (
    EventCaseIn,
    EventCaseOut,
    EventListOut,
    EventNoteIn,
    EventOut,
)
from surveillance.api.sse import event_stream_response
from surveillance.auth.audit import AuditAction
from surveillance.auth.principal import Principal
from surveillance.auth.roles import Permission
from surveillance.cases.footage import ItemKind
from surveillance.errors import SurveillanceError
from surveillance.events.clips import ClipShelf
from surveillance.events.errors import EventClipNotFound, EventNotFound, EventPictureNotFound
from surveillance.events.records import (
    MAX_PAGE,
    EventFilter,
    EventRecord,
    EventState,
    EventType,
    Severity,
)
from surveillance.services.access import Access
from surveillance.services.event_bus import EventBus
from surveillance.services.footage_times import iso, parse_moment

router = APIRouter(prefix="/api", tags=["events"])

Watcher = Annotated[Principal, requires(Permission.EVENTS_VIEW)]
ClipWatcher = Annotated[Principal, requires(Permission.EVENTS_VIEW, Permission.RECORDINGS_VIEW)]
Acknowledger = Annotated[Principal, requires(Permission.EVENTS_ACK)]

# Shown in a page's first snapshot: what someone may still act on.
SNAPSHOT_STATES = (EventState.OPEN, EventState.ACKNOWLEDGED)
NOT_ON_THE_WALL = frozenset({EventType.NODE_RUNNING.value})
SHOWN_TYPES = [t.value for t in EventType if t.value not in NOT_ON_THE_WALL]


def _split(values: list[str] | None) -> list[str] | None:
    """Repeated parameters and comma-separated lists alike; None when not given."""
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


@router.get("/events", response_model=EventListOut, summary="Events, newest first")
async def list_events(
    bus: EventBusDep,
    clips: AlarmClipsDep,
    access: AccessDep,
    principal: Watcher,
    camera: Annotated[str | None, Query(max_length=64, description="One camera's")] = None,
    platform: Annotated[str | None, Query(max_length=64, description="One platform's")] = None,
    type: Annotated[
        list[str] | None, Query(description="Of these types (camera.offline, ...)")
    ] = None,
    severity: Annotated[Severity | None, Query(description="This severity or worse")] = None,
    state: Annotated[list[EventState] | None, Query(description="In these states")] = None,
    active: Annotated[bool | None, Query(description="true: still holding; false: ended")] = None,
    since: Annotated[
        str | None, Query(max_length=64, description="Started at or after, ISO 8601")
    ] = None,
    until: Annotated[
        str | None, Query(max_length=64, description="Started before, ISO 8601")
    ] = None,
    children: Annotated[
        bool, Query(description="Also camera events folded under a platform event")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    before: Annotated[NumericId | None, Query(description="The `next` of the last page")] = None,
) -> EventListOut:
    cameras, platforms = access.event_scope(principal)
    query = EventFilter(
        camera_ids=cameras,
        platform_ids=platforms,
        camera_id=camera,
        platform_id=platform,
        # The node's own up-time only when asked for by name: the list is what the wall's
        # stream shows when that is down (web/static/js/event-feed.js polls it).
        types=_split(type) or SHOWN_TYPES,
        severity=severity,
        states=state,
        active=active,
        since=None if since is None else parse_moment("since", since),
        until=None if until is None else parse_moment("until", until),
        include_children=children,
        limit=limit,
        before_id=before,
    )
    page = await asyncio.to_thread(bus.search, query)
    return EventListOut(
        events=[_out(e, clips.shelf) for e in page.events], next=page.next_before_id
    )


@router.get(
    "/events/stream",
    summary="Events as they change (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "`event: snapshot` with a JSON list of the events still open or "
            "active that the user sees (camera events of a storm included, with their "
            "parent_id), then `event: event` with one event whenever it is raised or "
            "changes, and `: keepalive` every 15 s. Ends when the session or token no "
            "longer allows it.",
        },
        429: {"description": "The user follows as many event streams as allowed"},
    },
)
async def event_stream(
    request: Request,
    bus: EventBusDep,
    clips: AlarmClipsDep,
    access: AccessDep,
    principal: Watcher,
) -> StreamingResponse:
    feed = bus.subscribe(principal.user.id)  # 429 past the user's limit
    recheck = functools.partial(authenticate, request)
    source = _EventsSource(bus, access, clips.shelf)
    return event_stream_response(
        feed, bus.unsubscribe, recheck, principal, Permission.EVENTS_VIEW, source
    )


class _EventsSource:
    """What the events stream sends: events in the user's scope, the node's own excepted."""

    def __init__(self, bus: EventBus, access: Access, shelf: ClipShelf) -> None:
        self._bus = bus
        self._access = access
        self._shelf = shelf

    async def view(self, principal: Principal) -> Hashable:
        return self._access.event_scope(principal)

    async def snapshot(self, principal: Principal) -> tuple[str, Hashable]:
        cameras, platforms = self._access.event_scope(principal)
        unsettled, still_active = (
            EventFilter(
                camera_ids=cameras,
                platform_ids=platforms,
                include_children=True,
                limit=MAX_PAGE,
                states=states,
                active=active,
            )
            for states, active in ((SNAPSHOT_STATES, None), (None, True))
        )
        pages = await asyncio.gather(
            asyncio.to_thread(self._bus.search, unsettled),
            asyncio.to_thread(self._bus.search, still_active),
        )
        shown = {e.id: e for page in pages for e in page.events if _on_the_wall(e)}
        payload = ",".join(_out(shown[i], self._shelf).model_dump_json() for i in sorted(shown))
        return f"event: snapshot\ndata: [{payload}]\n\n", (cameras, platforms)

    async def changes(self, principal: Principal, keys: set[int]) -> list[str]:
        # One read for the batch: a storm changes hundreds of events at once, for every page.
        records = await asyncio.to_thread(self._bus.get_many, keys)
        return [
            f"event: event\ndata: {_out(record, self._shelf).model_dump_json()}\n\n"
            for record in records
            if _on_the_wall(record) and self._sees(principal, record)
        ]

    def _sees(self, principal: Principal, record: EventRecord) -> bool:
        return self._access.sees_event(principal, record.camera_id, record.platform_id)


def _on_the_wall(record: EventRecord) -> bool:
    return record.type not in NOT_ON_THE_WALL


def _out(record: EventRecord, shelf: ClipShelf) -> EventOut:
    return EventOut.of(record, has_clip=shelf.has(record.id))


async def _visible(
    bus: EventBus, access: Access, principal: Principal, event_id: int
) -> EventRecord:
    """The event, if the principal sees it; EventNotFound either way (as for cameras)."""
    record = await asyncio.to_thread(bus.get, event_id)
    if not access.sees_event(principal, record.camera_id, record.platform_id):
        raise EventNotFound(event_id)
    return record


@router.get("/events/{event_id}", response_model=EventOut, summary="One event")
async def get_event(
    event_id: NumericId,
    bus: EventBusDep,
    clips: AlarmClipsDep,
    access: AccessDep,
    principal: Watcher,
) -> EventOut:
    return _out(await _visible(bus, access, principal, event_id), clips.shelf)


@router.get(
    "/events/{event_id}/snapshot",
    summary="The picture the event was raised with",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "The event's picture"},
        404: {"description": "No such event, or it has no picture"},
    },
)
async def event_snapshot(
    event_id: NumericId, bus: EventBusDep, access: AccessDep, principal: Watcher
) -> Response:
    await _visible(bus, access, principal, event_id)
    picture = await asyncio.to_thread(bus.snapshot, event_id)
    if picture is None:
        raise EventPictureNotFound(event_id)
    return Response(
        picture.jpeg,
        media_type="image/jpeg",
        headers={
            "Cache-Control": "private, max-age=3600",
            "X-Captured-At": iso(picture.captured_at),
        },
    )


@router.post("/events/{event_id}/ack", response_model=EventOut, summary="Acknowledge an event")
async def acknowledge(
    event_id: NumericId,
    body: EventNoteIn,
    bus: EventBusDep,
    clips: AlarmClipsDep,
    access: AccessDep,
    audit: AuditDep,
    principal: Acknowledger,
) -> EventOut:
    await _visible(bus, access, principal, event_id)
    record = await asyncio.to_thread(
        bus.acknowledge, event_id, principal.name, body.note, client=audit.client
    )
    return _out(record, clips.shelf)


@router.post("/events/{event_id}/close", response_model=EventOut, summary="Close an event")
async def close(
    event_id: NumericId,
    body: EventNoteIn,
    bus: EventBusDep,
    clips: AlarmClipsDep,
    access: AccessDep,
    audit: AuditDep,
    principal: Acknowledger,
) -> EventOut:
    await _visible(bus, access, principal, event_id)
    record = await asyncio.to_thread(
        bus.close, event_id, principal.name, body.note, client=audit.client
    )
    return _out(record, clips.shelf)


@router.get(
    "/events/{event_id}/clip.mp4",
    summary="The clip the node kept of an alarm",
    response_class=Response,
    responses={
        200: {"content": {"video/mp4": {}}, "description": "The kept clip (not re-encoded)"},
        404: {"description": "No such event, or no clip was kept of it"},
    },
    description="The footage around an alarm on a camera whose recordings do not hold it, "
    "kept by the node when the alarm was raised (`has_clip`). Watching it is audited as "
    "recordings.play.",
)
async def event_clip(
    event_id: NumericId,
    bus: EventBusDep,
    clips: AlarmClipsDep,
    access: AccessDep,
    audit: AuditDep,
    principal: ClipWatcher,
) -> Response:
    event = await _visible(bus, access, principal, event_id)
    kept = await asyncio.to_thread(clips.shelf.read, event_id)
    if kept is None:
        raise EventClipNotFound(event_id)
    data, facts = kept
    end = facts.captured_at + facts.duration_s
    audit(
        principal.name, AuditAction.RECORDINGS_PLAY, camera_id=event.camera_id,
        start=iso(facts.captured_at), end=iso(end), event=event_id,
    )  # fmt: skip
    return Response(
        data,
        media_type="video/mp4",
        headers={
            "Cache-Control": "private, no-store",
            "X-Codec": facts.codec,
            "X-First-At": iso(facts.captured_at),
            "X-End-At": iso(end),
        },
    )


# -- an event into a case (services/alarm_cases.py) ---------------------------------------
CaseMaker = Annotated[Principal, requires(Permission.CASES_WRITE, Permission.EVIDENCE_ATTACH)]


@router.post(
    "/events/{event_id}/case",
    response_model=EventCaseOut,
    status_code=201,
    responses={
        404: {"model": CaseErrorOut, "description": "No such event (in your scope)"},
        409: {"model": CaseErrorOut, "description": "The event is in a case already"},
    },
    summary="Turn an event into a case with its picture and clip",
    description="The case, its evidence (the picture at the event's start, the clip from "
    "10 s before to 20 s after it), the event linked and acknowledged. Footage that cannot "
    "be had is named in `missing` and the case's timeline, never a failure.",
)
async def case_from_event(
    event_id: NumericId,
    body: EventCaseIn,
    bus: EventBusDep,
    clips: AlarmClipsDep,
    alarm_cases: AlarmCasesDep,
    access: AccessDep,
    audit: AuditDep,
    principal: CaseMaker,
) -> EventCaseOut:
    event = await _visible(bus, access, principal, event_id)
    try:
        made = await alarm_cases.open_case(
            event, principal.name, title=body.title, assignee=body.assignee, client=audit.client
        )
    except SurveillanceError as exc:
        audit(
            principal.name, AuditAction.EVENTS_CASE, camera_id=event.camera_id,
            outcome="failed", event=event_id, status=exc.status_code,
        )  # fmt: skip
        raise
    number = made.case.number
    for item in made.items:  # as the evidence routes audit their attaches
        action = (
            AuditAction.EVIDENCE_CLIP if item.kind == ItemKind.CLIP
            else AuditAction.EVIDENCE_SNAPSHOT
        )  # fmt: skip
        audit(
            principal.name, action, camera_id=item.camera_id, case=number, item=item.id,
            sha256=item.sha256, event=event_id,
        )  # fmt: skip
    audit(
        principal.name, AuditAction.EVENTS_CASE, camera_id=event.camera_id, event=event_id,
        case=number, items=[item.id for item in made.items], missing=len(made.missing),
    )  # fmt: skip
    return EventCaseOut(
        case_number=number,
        case_url=f"/cases/{number}",
        event=_out(made.event, clips.shelf),
        items=[ItemOut.model_validate(item) for item in made.items],
        missing=list(made.missing),
    )
