"""An event turned into a case with one click: the case, its evidence, the event linked.

The case is reported with the event's camera, its time and zone in the description; the
event is linked (``case_number``) and acknowledged *before* the footage is collected, so a
second click, however soon, is a 409 naming the case. Then, side by side:

- the picture at the event's start: from the packet ring (the camera's full picture),
  else from the recordings, else the small snapshot the event stored when it was raised
  (which carries its own capture time);
- the clip from ``events.alarm_clip_pre_s`` before the start to ``alarm_clip_post_s``
  after it: through the case footage builder (:class:`~.evidence.LiveFootage`: the ring,
  else the recordings) while either still holds the window, waiting for its end if that
  is still to come (bounded by the builder's grace), and shortened to what exists; else
  the clip the node kept when the alarm was raised (:mod:`.alarm_clips`), waiting for it
  if it is still being collected.

Footage that cannot be had never fails the case: the case's timeline says what is missing
and why, and so does the answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from surveillance.cases.errors import FootageUnavailable
from surveillance.cases.footage import Footage
from surveillance.cases.records import CaseRecord, ItemRecord
from surveillance.cases.service import CaseService
from surveillance.catalog import Camera, Catalog
from surveillance.errors import Conflict, SurveillanceError
from surveillance.events.errors import EventStateConflict
from surveillance.events.records import EventPicture, EventRecord, EventState
from surveillance.media.decode import encode_jpeg
from surveillance.media.ring_picture import picture_at
from surveillance.services.alarm_clips import AlarmClips
from surveillance.services.evidence import (
    LiveFootage,
    clip_footage,
    picture_footage,
    wall_time,
)
from surveillance.services.footage_times import Window, iso
from surveillance.services.ingest import IngestService

TITLE_CHARS = 200  # a case title's limit (cases table)
FOOTAGE_ERRORS = (SurveillanceError, OSError)  # what missing footage looks like


class EventAlreadyInCase(Conflict):
    def __init__(self, event_id: int, case_number: str | None) -> None:
        if case_number:
            message = f"event {event_id} is already in case {case_number}"
        else:
            message = f"a case is being made from event {event_id} right now"
        super().__init__(message)
        self.case_number = case_number


class CaseBus(Protocol):
    """What this service needs of the event bus."""

    def get(self, event_id: int) -> EventRecord: ...
    def snapshot(self, event_id: int) -> EventPicture | None: ...
    def link_case(self, event_id: int, case_number: str, user: str) -> EventRecord: ...
    def acknowledge(
        self, event_id: int, user: str, note: str | None, *, client: str = ""
    ) -> EventRecord: ...


@dataclass(frozen=True)
class EventCase:
    case: CaseRecord
    event: EventRecord  # linked, and acknowledged where it was open
    items: tuple[ItemRecord, ...]
    missing: tuple[str, ...]  # footage that could not be attached, and why


class AlarmCases:
    def __init__(
        self,
        bus: CaseBus,
        cases: CaseService,
        footage: LiveFootage,
        ingest: IngestService,
        catalog: Catalog,
        clips: AlarmClips,
        clip_s: tuple[float, float],
    ) -> None:
        self._bus = bus
        self._cases = cases
        self._footage = footage
        self._clips = clips
        self._pre_s, self._post_s = clip_s  # the clip around the event's start
        self._ingest = ingest
        self._catalog = catalog
        self._making: set[int] = set()  # events a case is being made from (on the loop)

    async def open_case(
        self,
        event: EventRecord,
        user: str,
        *,
        title: str | None,
        assignee: str | None,
        client: str = "",
    ) -> EventCase:
        """The case made from ``event`` (read by the caller, who checked its scope);
        ``client`` is the asker's address, for the acknowledgement's audit entry."""
        if event.case_number or event.id in self._making:
            raise EventAlreadyInCase(event.id, event.case_number)
        self._making.add(event.id)
        try:
            case, event = await asyncio.to_thread(
                self._report, event, user, title, assignee, client
            )
        finally:
            self._making.discard(event.id)
        camera = self._catalog.camera(event.camera_id) if event.camera_id else None
        if camera is None:
            why = (
                f"camera {event.camera_id!r} is no longer configured" if event.camera_id
                else "the event names no camera (a platform's event)"
            )  # fmt: skip
            missing: list[str] = [f"No footage attached: {why}"]
            items: list[ItemRecord] = []
        else:
            items, missing = await self._evidence(case.number, event, camera, user)
        for reason in missing:
            await asyncio.to_thread(self._cases.comment, case.number, user, reason)
        return EventCase(case, event, tuple(items), tuple(missing))

    def _report(
        self, event: EventRecord, user: str, title: str | None, assignee: str | None, client: str
    ) -> tuple[CaseRecord, EventRecord]:
        """Create the case, link the event, acknowledge it (blocking). The in-process
        guard of :meth:`open_case` keeps two clicks apart; the store's link refuses a
        second case whatever asked (EventStateConflict, 409)."""
        camera = self._catalog.camera(event.camera_id) if event.camera_id else None
        case = self._cases.create(
            title=title or self._default_title(event, camera),
            description=self._description(event, camera),
            place=camera.location.place if camera and camera.location else None,
            cameras=[camera.id] if camera else [],
            reporter=user,
            assignee=assignee,
        )
        linked = self._bus.link_case(event.id, case.number, user)
        if linked.state is EventState.OPEN:
            try:
                linked = self._bus.acknowledge(event.id, user, f"case {case.number}", client=client)
            except EventStateConflict:
                linked = self._bus.get(event.id)  # someone acknowledged it meanwhile
        return case, linked

    def _default_title(self, event: EventRecord, camera: Camera | None) -> str:
        """The summary at the camera's name (or the platform's), cut to a title's length."""
        platform = self._catalog.platforms.get(event.platform_id or "")
        where = camera.name if camera else platform.name if platform else event.platform_id
        title = f"{event.summary} at {where}" if where else event.summary
        return title if len(title) <= TITLE_CHARS else title[: TITLE_CHARS - 1] + "…"

    def _description(self, event: EventRecord, camera: Camera | None) -> str:
        lines = [
            event.summary,
            "",
            f"Event {event.id}: {event.type}, {event.severity.value}, "
            f"began {iso(event.started_at)}"
            + (f", ended {iso(event.ended_at)}" if event.ended_at is not None else ""),
        ]
        if camera is not None:
            lines.append(f"Camera: {camera.name} ({camera.id}), platform {camera.platform_id}")
        elif event.platform_id:
            lines.append(f"Platform: {event.platform_id}")
        if event.zone_id is not None:
            lines.append(f"Zone: {self._zone(event)}")
        return "\n".join(lines)

    @staticmethod
    def _zone(event: EventRecord) -> str:
        """The zone's name when the event was raised (zone motion puts it in the detail:
        a zone renamed or deleted since still reads as the operator saw it)."""
        named, tag = event.detail.get("zone"), event.detail.get("tag")
        name = str(named) if named else f"zone {event.zone_id}"
        return f"{name} (tag {tag})" if tag else name

    async def _evidence(
        self, number: str, event: EventRecord, camera: Camera, user: str
    ) -> tuple[list[ItemRecord], list[str]]:
        picture, clip = await asyncio.gather(
            self._attached(number, user, "picture", self._picture(event, camera)),
            self._attached(number, user, "clip", self._clip(event, camera)),
        )
        items = [i for i in (picture, clip) if isinstance(i, ItemRecord)]
        return items, [m for m in (picture, clip) if isinstance(m, str)]

    async def _attached(
        self, number: str, user: str, what: str, taking: Coroutine[Any, Any, Footage]
    ) -> ItemRecord | str:
        """The item, or the timeline's sentence saying why there is none."""
        try:
            footage = await taking
            return await self._cases.attach(number, footage, user)
        except FOOTAGE_ERRORS as exc:
            return f"No {what} of the event attached: {exc}"

    async def _picture(self, event: EventRecord, camera: Camera) -> Footage:
        """Ring, recordings, or the event's own snapshot, in that order."""
        from_ring = await asyncio.to_thread(self._ring_picture, camera, event.started_at)
        if from_ring is not None:
            return from_ring
        try:
            at = datetime.fromtimestamp(event.started_at, UTC)
            return await self._footage.snapshot(camera.id, at)
        except FOOTAGE_ERRORS as exc:
            stored = await asyncio.to_thread(self._bus.snapshot, event.id)
            if stored is None:
                reason = f"the live ring no longer holds it, the recordings neither ({exc})"
                raise FootageUnavailable(
                    camera.id, reason + ", and the event has no snapshot"
                ) from exc
            return picture_footage(
                camera.id, camera.platform_id, stored.jpeg, stored.captured_at,
                stored.width, stored.height,
                note="the event's snapshot, taken when it was raised",
            )  # fmt: skip

    def _ring_picture(self, camera: Camera, at: float) -> Footage | None:
        """The main stream's picture at ``at`` (wall seconds) if the ring still holds it
        (blocking: decodes up to a GOP)."""
        moment = time.monotonic() - (time.time() - at)
        try:
            ring = self._ingest.stream(camera.id).ring
        except SurveillanceError:
            return None  # a camera the ingest does not read (disabled): no ring
        shown = picture_at(ring, moment)
        if shown is None:
            return None
        jpeg, width, height = encode_jpeg(shown.frame)
        captured = wall_time(shown.received_at).timestamp()
        return picture_footage(
            camera.id, camera.platform_id, jpeg, captured, width, height,
            note="the picture at the event's start",
        )  # fmt: skip

    async def _clip(self, event: EventRecord, camera: Camera) -> Footage:
        at = datetime.fromtimestamp(event.started_at, UTC)
        asked = Window(event.started_at - self._pre_s, event.started_at + self._post_s)
        if not await asyncio.to_thread(self._held, camera.id, asked):
            kept = await self._clips.kept(event.id)
            if kept is not None:
                data, facts = kept
                note = "kept by the node when the alarm was raised" + (
                    f"; {facts.note}" if facts.note else ""
                )
                return clip_footage(
                    facts.camera_id, facts.platform_id, data,
                    datetime.fromtimestamp(facts.captured_at, UTC), facts.stream_time_s,
                    facts, note,
                )  # fmt: skip
        return await self._footage.clip(camera.id, at, self._pre_s, self._post_s)

    def _held(self, camera_id: str, asked: Window) -> bool:
        """Whether the ring or the recordings still hold the window (blocking)."""
        return self._footage.ring_holds(camera_id, asked.start) or self._clips.recorded(
            camera_id, asked
        )
