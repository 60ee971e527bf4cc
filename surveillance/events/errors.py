"""Errors of the events: an event that does not exist, or a change its state forbids."""

from __future__ import annotations

from surveillance.errors import Conflict, NotFound


class EventNotFound(NotFound):
    def __init__(self, event_id: int) -> None:
        super().__init__(f"no event {event_id}")
        self.event_id = event_id


class EventStateConflict(Conflict):
    """The event's state forbids the change (closed already, linked to a case already)."""


class EventPictureNotFound(NotFound):
    def __init__(self, event_id: int) -> None:
        super().__init__(f"event {event_id} has no picture")
        self.event_id = event_id


class EventClipNotFound(NotFound):
    def __init__(self, event_id: int) -> None:
        super().__init__(f"event {event_id} has no kept clip")
        self.event_id = event_id
