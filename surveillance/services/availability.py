"""The availability report: the node's events turned into :mod:`surveillance.events.availability`
intervals, for the cameras someone may see.

Reads ``camera.offline`` events (children of platform events included) and the node's own
``node.running`` events (:mod:`.node_heartbeat`) through the bus's search, page by page.
An event that began before the report's first day and was still going on inside it counts
too, so the search is bounded by the report's end only; retention (``events.retain_days``)
bounds what it reads. Blocking (database): call in a worker thread.

Several nodes (cluster mode): each has its own ``node.running:<id>`` events; monitored time
is the time ANY node ran (their union, events/availability.py's ``merged``), never the sum.
A node that crashed and is never started again (taken out of the cluster) leaves its run
active for ever, nobody else ending it: such a run counts only up to its last heartbeat
plus one heartbeat interval, or the other nodes' outages would count as monitored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import date
from typing import Protocol

from surveillance.catalog import Camera
from surveillance.events.availability import (
    DayAvailability,
    Interval,
    daily_availability,
    day_span,
)
from surveillance.events.records import MAX_PAGE, EventFilter, EventPage, EventRecord, EventType
from surveillance.services.node_heartbeat import HEARTBEAT_S


class EventSearch(Protocol):
    def search(self, query: EventFilter) -> EventPage: ...


class AvailabilityService:
    def __init__(self, events: EventSearch, clock: Callable[[], float] = time.time) -> None:
        self._events = events
        self._clock = clock

    def report(self, first: date, last: date, cameras: Sequence[Camera]) -> list[DayAvailability]:
        """Per platform of ``cameras`` (in their order) and day. Disabled cameras are left
        out: nobody watches them, so they are neither up nor down."""
        watched = [c for c in cameras if c.enabled]
        platforms: dict[str, list[str]] = {}
        for camera in watched:
            platforms.setdefault(camera.platform_id, []).append(camera.id)
        until = day_span(last).end
        now = self._clock()
        offline: dict[str, list[Interval]] = {}
        camera_ids = [c.id for c in watched]
        if camera_ids:
            for event in self._all(
                types=[EventType.CAMERA_OFFLINE], cameras=camera_ids, until=until
            ):
                if event.camera_id is not None:
                    offline.setdefault(event.camera_id, []).append(_span(event, now))
        running = [
            _run(event, now)
            for event in self._all(types=[EventType.NODE_RUNNING], cameras=None, until=until)
        ]
        return daily_availability(first, last, platforms, offline, running)

    def _all(
        self, *, types: Collection[str], cameras: Collection[str] | None, until: float
    ) -> Iterator[EventRecord]:
        before: int | None = None
        while True:
            page = self._events.search(
                EventFilter(
                    camera_ids=cameras,
                    types=types,
                    until=until,
                    include_children=True,  # a storm's camera events are outages too
                    limit=MAX_PAGE,
                    before_id=before,
                )
            )
            yield from page.events
            if page.next_before_id is None:
                return
            before = page.next_before_id


def _span(event: EventRecord, now: float) -> Interval:
    """From the event's start to its end; an active one lasts until now. (What a crashed
    node left active is ended when it starts again, or, in cluster mode, when another node
    takes its cameras over.)"""
    return Interval(event.started_at, event.ended_at if event.ended_at is not None else now)


def _run(event: EventRecord, now: float) -> Interval:
    """A node's run: an active one lasts until its last heartbeat and one interval more
    (a live node beats every HEARTBEAT_S, so its run reaches now), never past now."""
    if event.ended_at is not None:
        return Interval(event.started_at, event.ended_at)
    return Interval(event.started_at, min(now, event.last_seen_at + HEARTBEAT_S))
