"""Cases and their workflow: numbers, edits, state changes, comments and the timeline.

Every change that the custody chain records (create, edit, state, comment) appends to it in the same
transaction (:func:`.custody_log.append`), so a failed request leaves the case exactly as
it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from surveillance.cases import binding, custody, custody_log
from surveillance.cases.lookup import find_case, require, utcnow
from surveillance.cases.models import (
    Case,
    CaseCamera,
    CaseCounter,
    CaseTag,
    EvidenceItem,
    TimelineEntry,
)
from surveillance.cases.records import (
    CaseDetail,
    CaseFilter,
    CasePage,
    CaseRecord,
    TimelineRecord,
)
from surveillance.cases.states import CaseState, edit_error, transition_error
from surveillance.db.orm import Transactions, from_row

NUMBER_DIGITS = 6  # 2026-000123
CREATE_RETRIES = 3  # concurrent first cases of a year may race for the year's counter row
UNSET: Any = object()  # "leave as it is", where None is a value (no place, no assignee)
_Q = TypeVar("_Q", bound=Select[Any])


class CaseStore:
    def __init__(self, transactions: Transactions, sign: custody_log.Signer | None = None) -> None:
        self._transactions = transactions
        self._sign = sign

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
                with self._transactions.begin() as session:
                    moment = now or utcnow()
                    number = _next_number(session, moment.year)
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
                    add_timeline_entry(session, case, moment, reporter, "created", title)
                    detail = binding.create_detail(case_record(case))
                    custody_log.append(
                        session, case, moment, reporter, "create", None, detail, self._sign
                    )
                    return case_record(case)
            except IntegrityError:
                if attempt == CREATE_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    def get(self, number: str) -> CaseDetail:
        with self._transactions.begin() as session:
            return case_detail(session, find_case(session, number))

    def search(self, query: CaseFilter) -> CasePage:
        with self._transactions.begin() as session:
            filtered = _filtered(select(Case.id), query)
            total = session.scalar(select(func.count()).select_from(filtered.subquery()))
            cases = session.scalars(
                _filtered(select(Case), query)
                .order_by(Case.created_at.desc(), Case.id.desc())
                .limit(query.limit)
                .offset(query.offset)
            ).all()
            return CasePage(total or 0, tuple(case_record(c) for c in cases))

    def update(
        self,
        number: str,
        actor: str,
        *,
        title: str | None = None,
        description: str | None = None,
        place: str | None = UNSET,
        assignee: str | None = UNSET,
        tags: Sequence[str] | None = None,
        cameras: Sequence[str] | None = None,
    ) -> CaseRecord:
        """Edit a case: ``None`` leaves title, description, tags and cameras as they are,
        :data:`UNSET` (the default) leaves place and assignee, which may be set to None."""
        with self._transactions.begin() as session:
            case = find_case(session, number, lock=True)
            require(case, edit_error(CaseState(case.state)))
            changed: list[str] = []
            for name, value in (("title", title), ("description", description)):
                if value is not None and getattr(case, name) != value:
                    setattr(case, name, value)
                    changed.append(name)
            for name, value in (("place", place), ("assignee", assignee)):
                if value is not UNSET and getattr(case, name) != value:
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
                add_timeline_entry(session, case, moment, actor, "edit", ", ".join(changed))
                detail = binding.edit_detail(case_record(case), changed)
                custody_log.append(session, case, moment, actor, "edit", None, detail, self._sign)
            return case_record(case)

    def transition(
        self,
        number: str,
        target: CaseState,
        actor: str,
        *,
        comment: str | None = None,
        assignee: str | None = None,
    ) -> CaseRecord:
        with self._transactions.begin() as session:
            case = find_case(session, number, lock=True)
            current = CaseState(case.state)
            require(case, transition_error(current, target))
            if target is CaseState.DISPATCHED and not (assignee or case.assignee):
                require(case, "dispatching needs an assignee")
            moment = utcnow()
            if assignee:
                case.assignee = assignee
            case.state = target.value
            case.updated_at = moment
            entry = add_timeline_entry(session, case, moment, actor, "state", comment or "")
            entry.from_state, entry.to_state = current.value, target.value
            detail = {"from": current.value, "to": target.value}
            if assignee:
                detail["assignee"] = assignee
            custody_log.append(session, case, moment, actor, "state", None, detail, self._sign)
            return case_record(case)

    def comment(self, number: str, actor: str, text: str) -> TimelineRecord:
        with self._transactions.begin() as session:
            case = find_case(session, number, lock=True)
            require(case, edit_error(CaseState(case.state)))
            moment = utcnow()
            case.updated_at = moment
            entry = add_timeline_entry(session, case, moment, actor, "comment", text)
            detail = binding.comment_detail(text)
            custody_log.append(session, case, moment, actor, "comment", None, detail, self._sign)
            session.flush()
            return from_row(TimelineRecord, entry)


def add_timeline_entry(
    session: Session, case: Case, moment: datetime, actor: str, kind: str, text: str
) -> TimelineEntry:
    """A new entry on the case's timeline, in the caller's transaction."""
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


def case_record(case: Case) -> CaseRecord:
    return from_row(
        CaseRecord,
        case,
        state=CaseState(case.state),
        tags=tuple(sorted(t.tag for t in case.tags)),
        cameras=tuple(sorted(c.camera_id for c in case.cameras)),
    )


def case_detail(session: Session, case: Case) -> CaseDetail:
    """The case with its timeline and its number of items, as read in ``session``."""
    timeline = session.scalars(
        select(TimelineEntry).where(TimelineEntry.case_id == case.id).order_by(TimelineEntry.id)
    ).all()
    count = session.scalar(select(func.count()).where(EvidenceItem.case_id == case.id))
    return CaseDetail(
        case_record(case), tuple(from_row(TimelineRecord, t) for t in timeline), count or 0
    )


def _next_number(session: Session, year: int) -> str:
    counter = session.scalars(
        select(CaseCounter).where(CaseCounter.year == year).with_for_update()
    ).one_or_none()
    if counter is None:
        counter = CaseCounter(year=year, last=0)
        session.add(counter)
    counter.last += 1
    return f"{year}-{counter.last:0{NUMBER_DIGITS}d}"


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
