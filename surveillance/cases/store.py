"""The case store: cases, their timeline, evidence records and custody chain, in SQL.

Every change to a case happens in one transaction that also appends to its custody chain,
so a failed request leaves the case exactly as it was. Appends to one case's chain are
serialised: the case row is locked ``FOR UPDATE`` (PostgreSQL) or the whole database is
(SQLite's ``BEGIN IMMEDIATE``, see :mod:`.db`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Engine, Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from surveillance.cases import custody
from surveillance.cases.errors import CaseConflict, CaseNotFound, ItemNotFound
from surveillance.cases.footage import Footage
from surveillance.cases.models import (
    Case,
    CaseCamera,
    CaseCounter,
    CaseTag,
    CustodyEntry,
    EvidenceItem,
    TimelineEntry,
)
from surveillance.cases.records import (
    CaseDetail,
    CaseFilter,
    CasePage,
    CaseRecord,
    CustodyRecord,
    ExportView,
    ItemRecord,
    TimelineRecord,
)
from surveillance.cases.states import CaseState, attach_error, edit_error, transition_error
from surveillance.cases.storage import StoredBlob, is_hash

NUMBER_DIGITS = 6  # 2026-000123
CREATE_RETRIES = 3  # concurrent first cases of a year may race for the year's counter row
_UNSET: Any = object()
_Q = TypeVar("_Q", bound=Select[Any])


def utcnow() -> datetime:
    return datetime.now(UTC)


class CaseStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    # -- cases ----------------------------------------------------------------------------
    def create(
        self,
        *,
        title: str,
        description: str = "",
        place: str | None = None,
        tags: Iterable[str] = (),
        cameras: Iterable[str] = (),
        reporter: str,
        assignee: str | None = None,
        now: datetime | None = None,
    ) -> CaseRecord:
        for attempt in range(CREATE_RETRIES):
            try:
                with self._transaction() as session:
                    moment = now or utcnow()
                    number = self._next_number(session, moment.year)
                    case = Case(
                        number=number,
                        title=title,
                        description=description,
                        place=place,
                        reporter=reporter,
                        assignee=assignee,
                        state=CaseState.REPORTED.value,
                        created_at=moment,
                        updated_at=moment,
                        custody_seq=0,
                        custody_head=custody.genesis_hash(number),
                        tags=[CaseTag(tag=t) for t in dict.fromkeys(tags)],
                        cameras=[CaseCamera(camera_id=c) for c in dict.fromkeys(cameras)],
                    )
                    session.add(case)
                    session.flush()
                    self._timeline(session, case, moment, reporter, "created", title)
                    self._append_custody(
                        session, case, moment, reporter, "create", None, {"title": title}
                    )
                    return _case_record(case)
            except IntegrityError:
                if attempt == CREATE_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    def _next_number(self, session: Session, year: int) -> str:
        counter = session.scalars(
            select(CaseCounter).where(CaseCounter.year == year).with_for_update()
        ).one_or_none()
        if counter is None:
            counter = CaseCounter(year=year, last=0)
            session.add(counter)
        counter.last += 1
        return f"{year}-{counter.last:0{NUMBER_DIGITS}d}"

    def get(self, number: str) -> CaseDetail:
        with self._transaction() as session:
            case = self._case(session, number)
            timeline = session.scalars(
                select(TimelineEntry)
                .where(TimelineEntry.case_id == case.id)
                .order_by(TimelineEntry.id)
            ).all()
            count = session.scalar(select(func.count()).where(EvidenceItem.case_id == case.id))
            return CaseDetail(
                _case_record(case), tuple(_timeline_record(t) for t in timeline), count or 0
            )

    def search(self, query: CaseFilter) -> CasePage:
        with self._transaction() as session:
            filtered = _filtered(select(Case.id), query)
            total = session.scalar(select(func.count()).select_from(filtered.subquery()))
            cases = session.scalars(
                _filtered(select(Case), query)
                .order_by(Case.created_at.desc(), Case.id.desc())
                .limit(query.limit)
                .offset(query.offset)
            ).all()
            return CasePage(total or 0, tuple(_case_record(c) for c in cases))

    def update(
        self,
        number: str,
        actor: str,
        *,
        title: str | None = None,
        description: str | None = None,
        place: str | None = _UNSET,
        assignee: str | None = _UNSET,
        tags: Sequence[str] | None = None,
        cameras: Sequence[str] | None = None,
    ) -> CaseRecord:
        with self._transaction() as session:
            case = self._case(session, number, lock=True)
            self._require(case, edit_error(CaseState(case.state)))
            changed: list[str] = []
            for name, value in (
                ("title", title),
                ("description", description),
            ):
                if value is not None and getattr(case, name) != value:
                    setattr(case, name, value)
                    changed.append(name)
            for name, value in (("place", place), ("assignee", assignee)):
                if value is not _UNSET and getattr(case, name) != value:
                    setattr(case, name, value)
                    changed.append(name)
            if tags is not None and [t.tag for t in case.tags] != sorted(set(tags)):
                case.tags = [CaseTag(tag=t) for t in sorted(set(tags))]
                changed.append("tags")
            if cameras is not None and [c.camera_id for c in case.cameras] != sorted(set(cameras)):
                case.cameras = [CaseCamera(camera_id=c) for c in sorted(set(cameras))]
                changed.append("cameras")
            if changed:
                moment = utcnow()
                case.updated_at = moment
                self._timeline(session, case, moment, actor, "edit", ", ".join(changed))
            return _case_record(case)

    def transition(
        self,
        number: str,
        target: CaseState,
        actor: str,
        *,
        comment: str | None = None,
        assignee: str | None = None,
    ) -> CaseRecord:
        with self._transaction() as session:
            case = self._case(session, number, lock=True)
            current = CaseState(case.state)
            self._require(case, transition_error(current, target))
            if target is CaseState.DISPATCHED and not (assignee or case.assignee):
                self._require(case, "dispatching needs an assignee")
            moment = utcnow()
            if assignee:
                case.assignee = assignee
            case.state = target.value
            case.updated_at = moment
            entry = self._timeline(session, case, moment, actor, "state", comment or "")
            entry.from_state, entry.to_state = current.value, target.value
            detail = {"from": current.value, "to": target.value}
            if assignee:
                detail["assignee"] = assignee
            self._append_custody(session, case, moment, actor, "state", None, detail)
            return _case_record(case)

    def comment(self, number: str, actor: str, text: str) -> TimelineRecord:
        with self._transaction() as session:
            case = self._case(session, number, lock=True)
            self._require(case, edit_error(CaseState(case.state)))
            moment = utcnow()
            case.updated_at = moment
            entry = self._timeline(session, case, moment, actor, "comment", text)
            session.flush()
            return _timeline_record(entry)

    # -- evidence -------------------------------------------------------------------------
    def check_attachable(self, number: str) -> CaseRecord:
        """The case, if it exists and takes evidence now; raises otherwise."""
        with self._transaction() as session:
            case = self._case(session, number)
            self._require(case, attach_error(CaseState(case.state)))
            return _case_record(case)

    def add_item(self, number: str, footage: Footage, blob: StoredBlob, actor: str) -> ItemRecord:
        """Record stored footage as evidence of a case, checking its state again."""
        with self._transaction() as session:
            case = self._case(session, number, lock=True)
            self._require(case, attach_error(CaseState(case.state)))
            moment = utcnow()
            item = EvidenceItem(
                case_id=case.id,
                kind=footage.kind.value,
                sha256=blob.sha256,
                size=blob.size,
                media_type=footage.media_type,
                camera_id=footage.camera_id,
                platform_id=footage.platform_id,
                captured_at=footage.captured_at,
                stream_time_s=footage.stream_time_s,
                attached_at=moment,
                attached_by=actor,
                codec=footage.codec,
                width=footage.width,
                height=footage.height,
                duration_s=footage.duration_s,
                frames=footage.frames,
                note=footage.note,
            )
            session.add(item)
            if footage.camera_id not in {c.camera_id for c in case.cameras}:
                case.cameras.append(CaseCamera(camera_id=footage.camera_id))
            case.updated_at = moment
            session.flush()
            text = f"{footage.kind.value} from {footage.camera_id}"
            entry = self._timeline(session, case, moment, actor, "evidence", text)
            entry.item_id = item.id
            detail = {
                "sha256": blob.sha256,
                "size": blob.size,
                "kind": footage.kind.value,
                "camera": footage.camera_id,
            }
            self._append_custody(session, case, moment, actor, "attach", item.id, detail)
            return _item_record(item, case.number)

    def items(self, number: str) -> list[ItemRecord]:
        with self._transaction() as session:
            case = self._case(session, number)
            rows = session.scalars(
                select(EvidenceItem)
                .where(EvidenceItem.case_id == case.id)
                .order_by(EvidenceItem.id)
            ).all()
            return [_item_record(item, case.number) for item in rows]

    def item(self, number: str, ref: str) -> ItemRecord:
        """An item of the case by its id (digits) or its SHA-256 (64 hex digits)."""
        with self._transaction() as session:
            case = self._case(session, number)
            query = select(EvidenceItem).where(EvidenceItem.case_id == case.id)
            if ref.isdigit() and len(ref) <= 18:
                query = query.where(EvidenceItem.id == int(ref))
            elif is_hash(ref):
                query = query.where(EvidenceItem.sha256 == ref).order_by(EvidenceItem.id)
            else:
                raise ItemNotFound(number, ref)
            item = session.scalars(query.limit(1)).first()
            if item is None:
                raise ItemNotFound(number, ref)
            return _item_record(item, case.number)

    def log_access(self, number: str, item_id: int, action: str, actor: str) -> None:
        """Append a ``view`` or ``download`` entry (allowed in every state: it is a log)."""
        with self._transaction() as session:
            case = self._case(session, number, lock=True)
            self._append_custody(session, case, utcnow(), actor, action, item_id, {})

    def export_view(self, number: str, actor: str, detail: dict[str, Any]) -> ExportView:
        """Log an export and read what the bundle holds, in one transaction."""
        with self._transaction() as session:
            case = self._case(session, number, lock=True)
            self._append_custody(session, case, utcnow(), actor, "export", None, detail)
            session.flush()
            timeline = session.scalars(
                select(TimelineEntry)
                .where(TimelineEntry.case_id == case.id)
                .order_by(TimelineEntry.id)
            ).all()
            items = session.scalars(
                select(EvidenceItem)
                .where(EvidenceItem.case_id == case.id)
                .order_by(EvidenceItem.id)
            ).all()
            return ExportView(
                CaseDetail(
                    _case_record(case), tuple(_timeline_record(t) for t in timeline), len(items)
                ),
                tuple(_item_record(i, case.number) for i in items),
                tuple(self._custody_rows(session, case.id)),
            )

    def custody(self, number: str) -> list[CustodyRecord]:
        with self._transaction() as session:
            case = self._case(session, number)
            return list(self._custody_rows(session, case.id))

    # -- integrity ------------------------------------------------------------------------
    def all_items(self) -> list[ItemRecord]:
        with self._transaction() as session:
            rows = session.execute(
                select(EvidenceItem, Case.number)
                .join(Case, Case.id == EvidenceItem.case_id)
                .order_by(EvidenceItem.id)
            ).all()
            return [_item_record(item, number) for item, number in rows]

    def check_chains(self) -> tuple[int, int, list[str]]:
        """(cases, entries, problems) over every case's custody chain."""
        problems: list[str] = []
        entries = 0
        with self._transaction() as session:
            cases = session.scalars(select(Case).order_by(Case.id)).all()
            for case in cases:
                rows = list(self._custody_rows(session, case.id))
                entries += len(rows)
                problems += custody.check_chain(
                    case.number,
                    ((_link(case.number, r), r.entry_hash) for r in rows),
                    (case.custody_seq, case.custody_head),
                )
        return len(cases), entries, problems

    # -- internals ------------------------------------------------------------------------
    @staticmethod
    def _case(session: Session, number: str, *, lock: bool = False) -> Case:
        query: Select[Case] = select(Case).where(Case.number == number)
        if lock:
            query = query.with_for_update()
        case = session.scalars(query).one_or_none()
        if case is None:
            raise CaseNotFound(number)
        return case

    @staticmethod
    def _require(case: Case, problem: str | None) -> None:
        if problem is not None:
            raise CaseConflict(case.number, case.state, problem)

    @staticmethod
    def _timeline(
        session: Session, case: Case, moment: datetime, actor: str, kind: str, text: str
    ) -> TimelineEntry:
        entry = TimelineEntry(
            case_id=case.id,
            at=moment,
            actor=actor,
            kind=kind,
            text=text,
            from_state=None,
            to_state=None,
            item_id=None,
        )
        session.add(entry)
        return entry

    @staticmethod
    def _append_custody(
        session: Session,
        case: Case,
        moment: datetime,
        actor: str,
        action: str,
        item_id: int | None,
        detail: dict[str, Any],
    ) -> None:
        link = custody.Link(
            case_number=case.number,
            seq=case.custody_seq + 1,
            at=custody.iso(moment),
            actor=actor,
            action=action,
            item_id=item_id,
            detail=detail,
            prev_hash=case.custody_head,
        )
        digest = link.digest()
        session.add(
            CustodyEntry(
                case_id=case.id,
                seq=link.seq,
                at=moment,
                actor=actor,
                action=action,
                item_id=item_id,
                detail=custody.canonical_json(detail).decode(),
                prev_hash=link.prev_hash,
                entry_hash=digest,
            )
        )
        case.custody_seq = link.seq
        case.custody_head = digest

    @staticmethod
    def _custody_rows(session: Session, case_id: int) -> Iterator[CustodyRecord]:
        rows = session.scalars(
            select(CustodyEntry).where(CustodyEntry.case_id == case_id).order_by(CustodyEntry.seq)
        )
        for row in rows:
            yield CustodyRecord(
                seq=row.seq,
                at=row.at,
                actor=row.actor,
                action=row.action,
                item_id=row.item_id,
                detail=json.loads(row.detail),
                prev_hash=row.prev_hash,
                entry_hash=row.entry_hash,
            )


def _link(case_number: str, record: CustodyRecord) -> custody.Link:
    return custody.Link(
        case_number=case_number,
        seq=record.seq,
        at=custody.iso(record.at),
        actor=record.actor,
        action=record.action,
        item_id=record.item_id,
        detail=record.detail,
        prev_hash=record.prev_hash,
    )


def _filtered(query: _Q, f: CaseFilter) -> _Q:
    if f.states:
        query = query.where(Case.state.in_([s.value for s in f.states]))
    if f.tags:
        query = query.where(Case.id.in_(select(CaseTag.case_id).where(CaseTag.tag.in_(f.tags))))
    if f.cameras:
        query = query.where(
            Case.id.in_(select(CaseCamera.case_id).where(CaseCamera.camera_id.in_(f.cameras)))
        )
    if f.assignee is not None:
        query = query.where(Case.assignee == f.assignee)
    if f.reporter is not None:
        query = query.where(Case.reporter == f.reporter)
    if f.text:
        query = query.where(
            or_(
                Case.number.icontains(f.text, autoescape=True),
                Case.title.icontains(f.text, autoescape=True),
                Case.description.icontains(f.text, autoescape=True),
                Case.place.icontains(f.text, autoescape=True),
            )
        )
    if f.created_from is not None:
        query = query.where(Case.created_at >= f.created_from)
    if f.created_to is not None:
        query = query.where(Case.created_at < f.created_to)
    return query


def _case_record(case: Case) -> CaseRecord:
    return CaseRecord(
        id=case.id,
        number=case.number,
        title=case.title,
        description=case.description,
        place=case.place,
        reporter=case.reporter,
        assignee=case.assignee,
        state=CaseState(case.state),
        tags=tuple(sorted(t.tag for t in case.tags)),
        cameras=tuple(sorted(c.camera_id for c in case.cameras)),
        created_at=case.created_at,
        updated_at=case.updated_at,
        custody_seq=case.custody_seq,
        custody_head=case.custody_head,
    )


def _timeline_record(entry: TimelineEntry) -> TimelineRecord:
    return TimelineRecord(
        id=entry.id,
        at=entry.at,
        actor=entry.actor,
        kind=entry.kind,
        text=entry.text,
        from_state=entry.from_state,
        to_state=entry.to_state,
        item_id=entry.item_id,
    )


def _item_record(item: EvidenceItem, case_number: str) -> ItemRecord:
    return ItemRecord(
        id=item.id,
        case_number=case_number,
        kind=item.kind,
        sha256=item.sha256,
        size=item.size,
        media_type=item.media_type,
        camera_id=item.camera_id,
        platform_id=item.platform_id,
        captured_at=item.captured_at,
        stream_time_s=item.stream_time_s,
        attached_at=item.attached_at,
        attached_by=item.attached_by,
        codec=item.codec,
        width=item.width,
        height=item.height,
        duration_s=item.duration_s,
        frames=item.frames,
        note=item.note,
    )
