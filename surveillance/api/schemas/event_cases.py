"""Request and response models of turning an event into a case."""

from __future__ import annotations

from pydantic import Field

from surveillance.api.schemas.base import In, Out
from surveillance.api.schemas.cases import ItemOut


class EventCaseIn(In):
    title: str | None = Field(
        None, min_length=1, max_length=200, description="Default: the event's summary at its camera"
    )
    assignee: str | None = Field(None, max_length=128)


class EventCaseOut(Out):
    case_number: str
    case_url: str = Field(description="The case's page")
    event_id: int
    event_state: str = Field(description="The event's state after acknowledging it")
    items: list[ItemOut] = Field(description="The evidence attached: picture, clip")
    missing: list[str] = Field(description="Footage that could not be attached, and why")
