"""What every part of the case store does first in a transaction: find the case's row
(locked, when the change will append to its custody chain) and refuse what its state
forbids."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from surveillance.cases.errors import CaseConflict, CaseNotFound
from surveillance.cases.models import Case


def utcnow() -> datetime:
    return datetime.now(UTC)


def find_case(session: Session, number: str, *, lock: bool = False) -> Case:
    """The case's row; ``lock`` takes it ``FOR UPDATE`` (PostgreSQL; SQLite's whole
    database is locked already), which serialises appends to its custody chain."""
    query = select(Case).where(Case.number == number)
    if lock:
        query = query.with_for_update()
    case = session.scalars(query).one_or_none()
    if case is None:
        raise CaseNotFound(number)
    return case


def require(case: Case, problem: str | None) -> None:
    """Raise :class:`CaseConflict` if the state check found a ``problem``."""
    if problem is not None:
        raise CaseConflict(case.number, case.state, problem)
