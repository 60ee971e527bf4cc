"""Events as the API answers them, the bodies of acknowledging and closing one, and of
turning one into a case."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from surveillance.api.schemas.base import In, Out, UtcTime
from surveillance.api.schemas.cases import ItemOut
from surveillance.events.records import EventRecord, EventState, Severity
from surveillance.events.tables import NOTE_LENGTH


class EventOut(Out):
    id: int
    type: str = Field(description="camera.offline, quality.frozen, zone.motion, ...")
    severity: Severity = Field(description="alarm pins the wall; warning marks the tile")
    camera_id: str | None
    platform_id: str | None
    zone_id: int | None
    key: str = Field(description="The condition: one active event per key")
    summary: str
    detail: dict[str, Any]
    state: EventState
    active: bool = Field(description="The condition still holds (no end yet)")
    started_at: UtcTime
    last_seen_at: UtcTime
    ended_at: UtcTime | None
    updated_at: UtcTime
    acked_by: str | None
    acked_at: UtcTime | None
    closed_by: str | None = Field(description="null on an event that closed by itself")
    closed_at: UtcTime | None
    note: str | None
    case_number: str | None
    parent_id: int | None = Field(description="The platform event this one is folded under")
    has_snapshot: bool = Field(description="GET /api/events/{id}/snapshot has a picture")
    has_clip: bool = Field(
        False,
        description="GET /api/events/{id}/clip.mp4 has the clip the node kept of the alarm",
    )

    @classmethod
    def of(cls, record: EventRecord, *, has_clip: bool = False) -> EventOut:
        return cls.model_validate(record).model_copy(update={"has_clip": has_clip})


class EventListOut(Out):
    events: list[EventOut]
    next: int | None = Field(description="Pass as `before` for the next page; null: no more")


class EventNoteIn(In):
    note: str | None = Field(None, max_length=NOTE_LENGTH, description="Why, in a few words")


class EventCaseIn(In):
    title: str | None = Field(
        None, min_length=1, max_length=200, description="Default: the event's summary at its camera"
    )
    assignee: str | None = Field(None, max_length=128)


class EventCaseOut(Out):
    case_number: str
    case_url: str = Field(description="The case's page")
    event: EventOut = Field(description="The event, linked and acknowledged")
    items: list[ItemOut] = Field(description="The evidence attached: picture, clip")
    missing: list[str] = Field(description="Footage that could not be attached, and why")
