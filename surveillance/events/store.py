"""EventStore: the only code that touches the events tables; short transactions, records out.

The state rules (docs/architecture.md, "Events") are applied here, each in the transaction
that changes the row, so two operators acknowledging at once, or an acknowledgement racing
the condition's end, leave a state the rules allow:

* raising a key that has an active event updates it (summary, detail, last_seen_at, and
  the severity and parent when given); otherwise a new event starts, ``open``;
* an event that ends ``open`` closes by itself unless it is an alarm (an alarm waits for
  someone to acknowledge it); an ``acknowledged`` one closes when it ends;
* acknowledging an ended event closes it; an operator may close any event with a note.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import Engine, and_, delete, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from surveillance.db.fence import Fence
from surveillance.db.orm import Transactions, from_row
from surveillance.events.errors import EventNotFound, EventStateConflict
from surveillance.events.records import (
    SEVERITY_RANK,
    EventFilter,
    EventPage,
    EventPicture,
    EventRecord,
    EventSpec,
    EventState,
    Severity,
)
from surveillance.events.tables import (
    NOTE_LENGTH,
    SUMMARY_LENGTH,
    EventRow,
    EventSnapshotRow,
)

PRUNE_BATCH = 1000  # events removed per transaction: retention never holds the writer long


class EventStore:
    def __init__(
        self, engine: Engine, node_id: str | None = None, fence: Fence | None = None
    ) -> None:
        """Cluster mode: ``node_id`` is written on the events this node raises (its
        leftovers, and the events it may end, are its own), and ``fence(connection,
        camera_id)`` refuses (LeaseLost) a camera event's raise once this node no longer
        holds the camera."""
        self._transactions = Transactions(engine)
        self._node_id = node_id
        self._fence = fence

    # -- changes --------------------------------------------------------------------------
    def raise_event(
        self,
        spec: EventSpec,
        at: float,
        picture: EventPicture | None = None,
        parent_id: int | None = None,
    ) -> tuple[EventRecord, bool]:
        """The key's active event, updated, or a new one; and whether it is new.

        A picture is stored with a new event, or with an active one that has none yet."""
        try:
            return self._raise(spec, at, picture, parent_id)
        except IntegrityError:
            # Another writer started the same key's event between our look and our insert
            # (PostgreSQL; SQLite's BEGIN IMMEDIATE serialises): it is ours to update now.
            return self._raise(spec, at, picture, parent_id)

    def _raise(
        self, spec: EventSpec, at: float, picture: EventPicture | None, parent_id: int | None
    ) -> tuple[EventRecord, bool]:
        with self._transactions.begin() as session:
            if self._fence is not None and spec.camera_id is not None:
                self._fence(session.connection(), spec.camera_id)
            row = session.scalars(
                select(EventRow).where(EventRow.key == spec.key, EventRow.ended_at.is_(None))
            ).one_or_none()
            created = row is None
            if row is None:
                row = EventRow(
                    type=spec.type.value,
                    severity=spec.severity.value,
                    camera_id=spec.camera_id,
                    platform_id=spec.platform_id,
                    zone_id=spec.zone_id,
                    key=spec.key,
                    summary=spec.summary[:SUMMARY_LENGTH],
                    detail=_json(spec.detail),
                    state=EventState.OPEN.value,
                    started_at=at,
                    last_seen_at=at,
                    updated_at=at,
                    parent_id=parent_id,
                    node_id=self._node_id,
                )
                session.add(row)
                session.flush()  # the id, for the snapshot
            else:
                row.summary = spec.summary[:SUMMARY_LENGTH]
                row.detail = _json(spec.detail)
                row.last_seen_at = max(row.last_seen_at, at)
                row.updated_at = at
                # A condition may grow worse while it lasts, never milder on its own.
                if SEVERITY_RANK[spec.severity] > SEVERITY_RANK[Severity(row.severity)]:
                    row.severity = spec.severity.value
                if parent_id is not None:
                    row.parent_id = parent_id
                # A camera's condition raised by its new owner (taken over) is the new
                # owner's to end, also as a leftover after a crash.
                row.node_id = self._node_id
            has_picture = not created and _has_snapshot(session, row.id)
            if picture is not None and not has_picture:
                session.add(_snapshot_row(row.id, picture))
                has_picture = True
            return _record(row, has_picture), created

    def end_event(self, key: str, at: float) -> EventRecord | None:
        """End the key's active event (None: there is none)."""
        with self._transactions.begin() as session:
            row = session.scalars(
                select(EventRow).where(EventRow.key == key, EventRow.ended_at.is_(None))
            ).one_or_none()
            if row is None:
                return None
            if self._node_id is not None and row.node_id not in (None, self._node_id):
                # Raised again by the camera's new owner (a hand-off): its to end. Ending
                # is not fenced: a node that let a camera go still ends what it raised.
                return None
            _end(row, max(at, row.started_at))
            return _record(row, _has_snapshot(session, row.id))

    def acknowledge(self, event_id: int, user: str, note: str | None, at: float) -> EventRecord:
        with self._transactions.begin() as session:
            row = _locked(session, event_id)
            if row.state != EventState.OPEN:
                by = row.acked_by or row.closed_by
                raise EventStateConflict(
                    f"event {event_id} is {row.state} already" + (f" (by {by})" if by else "")
                )
            row.state = EventState.ACKNOWLEDGED.value
            row.acked_by, row.acked_at, row.updated_at = user, at, at
            if note is not None:
                row.note = note[:NOTE_LENGTH]
            if row.ended_at is not None:  # the condition is over: nothing left to watch
                row.state = EventState.CLOSED.value
                row.closed_by, row.closed_at = user, at
            return _record(row, _has_snapshot(session, row.id))

    def close(self, event_id: int, user: str, note: str | None, at: float) -> EventRecord:
        with self._transactions.begin() as session:
            row = _locked(session, event_id)
            if row.state == EventState.CLOSED:
                raise EventStateConflict(f"event {event_id} is closed already")
            row.state = EventState.CLOSED.value
            row.closed_by, row.closed_at, row.updated_at = user, at, at
            if note is not None:
                row.note = note[:NOTE_LENGTH]
            return _record(row, _has_snapshot(session, row.id))

    def link_case(self, event_id: int, case_number: str, at: float) -> EventRecord:
        with self._transactions.begin() as session:
            row = _locked(session, event_id)
            if row.case_number is not None:
                raise EventStateConflict(
                    f"event {event_id} is linked to case {row.case_number} already"
                )
            row.case_number, row.updated_at = case_number, at
            return _record(row, _has_snapshot(session, row.id))

    def end_leftovers(self, at: float, detail: Mapping[str, Any]) -> list[EventRecord]:
        """End every active event at ``at`` (or its last sighting, if later), adding
        ``detail``: what a node that stopped without ending them left behind. In cluster
        mode only this node's: the others' are theirs (or their cameras' new owners')."""
        active: ColumnElement[bool] = EventRow.ended_at.is_(None)
        if self._node_id is not None:
            active = and_(active, EventRow.node_id == self._node_id)
        with self._transactions.begin() as session:
            rows = session.scalars(select(EventRow).where(active)).all()
            for row in rows:
                row.detail = _json({**json.loads(row.detail), **detail})
                _end(row, max(at, row.last_seen_at))
            return [_record(row, _has_snapshot(session, row.id)) for row in rows]

    def close_removed(
        self,
        cameras: Collection[str],
        platforms: Collection[str],
        ended_at: float,
        detail: Mapping[str, Any],
        closed_by: str,
        at: float,
    ) -> list[EventRecord]:
        """End (at ``ended_at`` or its last sighting, if later, adding ``detail``) and close
        at ``at`` every event not closed yet of a camera not in ``cameras``, or camera-less
        of a platform not in ``platforms``: nobody could act on them any more (the
        configuration no longer has their camera). They stay in history."""
        gone = or_(
            and_(EventRow.camera_id.is_not(None), EventRow.camera_id.not_in(list(cameras))),
            and_(
                EventRow.camera_id.is_(None),
                EventRow.platform_id.is_not(None),
                EventRow.platform_id.not_in(list(platforms)),
            ),
        )
        with self._transactions.begin() as session:
            rows = session.scalars(
                select(EventRow)
                .where(gone, EventRow.state != EventState.CLOSED.value)
                .with_for_update()
            ).all()
            for row in rows:
                if row.ended_at is None:
                    row.detail = _json({**json.loads(row.detail), **detail})
                    _end(row, max(ended_at, row.last_seen_at))
                row.state = EventState.CLOSED.value
                row.closed_by, row.closed_at, row.updated_at = closed_by, at, at
            return [_record(row, _has_snapshot(session, row.id)) for row in rows]

    def prune(self, before: float) -> int:
        """Remove events that started and ended before ``before``, with their pictures; how
        many. Active events stay, however old: their condition still holds."""
        removed = 0
        while True:
            with self._transactions.begin() as session:
                ids = session.scalars(
                    select(EventRow.id)
                    .where(
                        EventRow.started_at < before,
                        EventRow.ended_at.is_not(None),
                        EventRow.ended_at < before,
                    )
                    .limit(PRUNE_BATCH)
                ).all()
                if not ids:
                    return removed
                session.execute(delete(EventSnapshotRow).where(EventSnapshotRow.event_id.in_(ids)))
                session.execute(delete(EventRow).where(EventRow.id.in_(ids)))
                # Children of a removed platform event keep their own rows, without the link.
                session.execute(
                    update(EventRow).where(EventRow.parent_id.in_(ids)).values(parent_id=None)
                )
            removed += len(ids)

    # -- reads ----------------------------------------------------------------------------
    def get(self, event_id: int) -> EventRecord:
        with self._transactions.begin() as session:
            row = session.get(EventRow, event_id)
            if row is None:
                raise EventNotFound(event_id)
            return _record(row, _has_snapshot(session, row.id))

    def get_many(self, event_ids: Collection[int]) -> list[EventRecord]:
        """Those of the events that still exist, by id (a page's batch of changes)."""
        with self._transactions.begin() as session:
            rows = session.scalars(
                select(EventRow).where(EventRow.id.in_(list(event_ids))).order_by(EventRow.id)
            ).all()
            pictures = _with_snapshot(session, [row.id for row in rows])
            return [_record(row, row.id in pictures) for row in rows]

    def snapshot(self, event_id: int) -> EventPicture | None:
        with self._transactions.begin() as session:
            row = session.get(EventSnapshotRow, event_id)
            if row is None:
                return None
            return EventPicture(row.jpeg, row.width, row.height, row.captured_at)

    def search(self, query: EventFilter) -> EventPage:
        """Events matching ``query``, newest (highest id) first, a page at a time."""
        conditions = _conditions(query)
        with self._transactions.begin() as session:
            rows = session.scalars(
                select(EventRow)
                .where(*conditions)
                .order_by(EventRow.id.desc())
                .limit(query.limit + 1)
            ).all()
            page = rows[: query.limit]
            pictures = _with_snapshot(session, [row.id for row in page])
            records = tuple(_record(row, row.id in pictures) for row in page)
        more = len(rows) > query.limit
        return EventPage(records, records[-1].id if more and records else None)

    def open_counts(self) -> dict[Severity, int]:
        """Events nobody has acknowledged yet, per severity (for the metrics)."""
        with self._transactions.begin() as session:
            counted = session.execute(
                select(EventRow.severity, func.count())
                .where(EventRow.state == EventState.OPEN.value)
                .group_by(EventRow.severity)
            ).all()
        counts = dict.fromkeys(Severity, 0)
        for severity, count in counted:
            counts[Severity(severity)] = count
        return counts

    def latest_seen(self, event_type: str) -> float | None:
        """The newest ``last_seen_at`` of events of this type (the node's last heartbeat,
        for node.running); in cluster mode of this node's events."""
        query = select(func.max(EventRow.last_seen_at)).where(EventRow.type == event_type)
        if self._node_id is not None:
            query = query.where(EventRow.node_id == self._node_id)
        with self._transactions.begin() as session:
            return session.scalar(query)

    def end_node_events(
        self, node_id: str, camera_ids: Collection[str], at: float, detail: Mapping[str, Any]
    ) -> list[EventRecord]:
        """End the active events another node raised for these cameras, at their last
        sighting (no later than ``at``), adding ``detail``: cameras taken over from a node
        that is not live, whose conditions nobody watched since."""
        with self._transactions.begin() as session:
            rows = session.scalars(
                select(EventRow)
                .where(
                    EventRow.ended_at.is_(None),
                    EventRow.node_id == node_id,
                    EventRow.camera_id.in_(list(camera_ids)),
                )
                .with_for_update()
            ).all()
            for row in rows:
                row.detail = _json({**json.loads(row.detail), **detail})
                _end(row, min(at, max(row.last_seen_at, row.started_at)))
            return [_record(row, _has_snapshot(session, row.id)) for row in rows]


def _conditions(query: EventFilter) -> list[Any]:
    conditions: list[Any] = []
    if query.camera_ids is not None:
        in_scope: ColumnElement[bool] = EventRow.camera_id.in_(list(query.camera_ids))
        if query.platform_ids is not None:
            platform_wide = and_(
                EventRow.camera_id.is_(None), EventRow.platform_id.in_(list(query.platform_ids))
            )
            in_scope = or_(in_scope, platform_wide)
        conditions.append(in_scope)
    if query.camera_id is not None:
        conditions.append(EventRow.camera_id == query.camera_id)
    if query.platform_id is not None:
        conditions.append(EventRow.platform_id == query.platform_id)
    if query.types is not None:
        conditions.append(EventRow.type.in_(list(query.types)))
    if query.severity is not None:
        rank = SEVERITY_RANK[query.severity]
        conditions.append(
            EventRow.severity.in_([s.value for s, r in SEVERITY_RANK.items() if r >= rank])
        )
    if query.states is not None:
        conditions.append(EventRow.state.in_([EventState(s).value for s in query.states]))
    if query.active is not None:
        active = EventRow.ended_at.is_(None)
        conditions.append(active if query.active else EventRow.ended_at.is_not(None))
    if query.since is not None:
        conditions.append(EventRow.started_at >= query.since)
    if query.until is not None:
        conditions.append(EventRow.started_at < query.until)
    if not query.include_children and query.camera_id is None:
        # Folded under their platform event; asked for by camera, they are that camera's.
        conditions.append(EventRow.parent_id.is_(None))
    if query.before_id is not None:
        conditions.append(EventRow.id < query.before_id)
    return conditions


def _end(row: EventRow, at: float) -> None:
    row.ended_at, row.updated_at = at, at
    row.last_seen_at = max(row.last_seen_at, at)
    if row.state == EventState.ACKNOWLEDGED or (
        row.state == EventState.OPEN and row.severity != Severity.ALARM
    ):
        # Closed by itself (closed_by stays NULL): nobody needs to act on it any more.
        row.state, row.closed_at = EventState.CLOSED.value, at


def _locked(session: Session, event_id: int) -> EventRow:
    row = session.get(EventRow, event_id, with_for_update=True)
    if row is None:
        raise EventNotFound(event_id)
    return row


def _has_snapshot(session: Session, event_id: int) -> bool:
    return bool(session.scalar(select(exists().where(EventSnapshotRow.event_id == event_id))))


def _with_snapshot(session: Session, event_ids: list[int]) -> set[int]:
    if not event_ids:
        return set()
    found = session.scalars(
        select(EventSnapshotRow.event_id).where(EventSnapshotRow.event_id.in_(event_ids))
    )
    return set(found)


def _snapshot_row(event_id: int, picture: EventPicture) -> EventSnapshotRow:
    return EventSnapshotRow(
        event_id=event_id,
        jpeg=picture.jpeg,
        width=picture.width,
        height=picture.height,
        captured_at=picture.captured_at,
    )


def _json(detail: Mapping[str, Any]) -> str:
    return json.dumps(dict(detail), sort_keys=True, separators=(",", ":"))


def _record(row: EventRow, has_snapshot: bool) -> EventRecord:
    return from_row(
        EventRecord,
        row,
        severity=Severity(row.severity),
        state=EventState(row.state),
        detail=json.loads(row.detail),
        has_snapshot=has_snapshot,
    )
