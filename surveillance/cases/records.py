"""Plain, immutable views of stored cases, for the layers above the store.

The store hands these out instead of ORM objects so that nothing above it holds a session
or can lazily load (or change) a row by accident. Each record names its fields once, here:
the stores build them with :func:`surveillance.db.orm.from_row`, which copies every field
of the same name from the row, and the bundle writes them whole; so a new column reaches
the record, the API and the bundle by being added to the model, the migration and the
record, and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from surveillance.cases import custody
from surveillance.cases.footage import Capture
from surveillance.cases.states import CaseState


@dataclass(frozen=True)
class CaseRecord:
    id: int
    number: str
    title: str
    description: str
    place: str | None
    reporter: str
    assignee: str | None
    state: CaseState
    tags: tuple[str, ...]
    cameras: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    custody_seq: int
    custody_head: str


@dataclass(frozen=True)
class TimelineRecord:
    id: int
    at: datetime
    actor: str
    kind: str  # created, comment, state, evidence, edit
    text: str
    from_state: str | None
    to_state: str | None
    item_id: int | None


@dataclass(frozen=True, kw_only=True)
class ItemRecord(Capture):
    """An evidence item: the footage's facts (:class:`~.footage.Capture`), and where and
    when its bytes were attached."""

    id: int
    case_number: str
    kind: str  # an ItemKind's value
    sha256: str
    size: int
    attached_at: datetime
    attached_by: str


@dataclass(frozen=True)
class CustodyRecord:
    seq: int
    at: datetime
    actor: str
    action: str
    item_id: int | None
    detail: dict[str, Any]
    prev_hash: str
    entry_hash: str
    signature: str | None = None  # base64, by the node's key; None before signing began

    def link(self, case_number: str) -> custody.Link:
        """This entry as the hash chain sees it."""
        return custody.Link(
            case_number=case_number,
            seq=self.seq,
            at=custody.iso(self.at),
            actor=self.actor,
            action=self.action,
            item_id=self.item_id,
            detail=self.detail,
            prev_hash=self.prev_hash,
        )


@dataclass(frozen=True)
class CaseDetail:
    case: CaseRecord
    timeline: tuple[TimelineRecord, ...]
    item_count: int


@dataclass(frozen=True)
class CasePage:
    total: int
    cases: tuple[CaseRecord, ...]


@dataclass(frozen=True)
class CaseFilter:
    states: tuple[CaseState, ...] = ()
    tags: tuple[str, ...] = ()  # any of these
    cameras: tuple[str, ...] = ()  # any of these
    assignee: str | None = None
    reporter: str | None = None
    text: str | None = None  # in number, title, description or place
    created_from: datetime | None = None
    created_to: datetime | None = None
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class ExportView:
    """Everything a bundle needs, read in the transaction that logged the export."""

    detail: CaseDetail
    items: tuple[ItemRecord, ...]
    custody: tuple[CustodyRecord, ...]
