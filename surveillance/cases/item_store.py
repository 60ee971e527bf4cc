"""Evidence items: what footage a case holds, by hash, with the facts of its capture.

An attach records the item, links its camera to the case, puts it on the timeline and
appends to the custody chain an entry that binds the whole item record
(:mod:`.binding`), all in one transaction, after checking the case's state
again (the footage was taken while the case was not locked).
"""

from __future__ import annotations

from dataclasses import fields

from sqlalchemy import select
from sqlalchemy.orm import Session

from surveillance.cases import binding, custody_log
from surveillance.cases.case_store import add_timeline_entry, case_record
from surveillance.cases.errors import ItemNotFound
from surveillance.cases.footage import Capture, Footage
from surveillance.cases.lookup import find_case, require, utcnow
from surveillance.cases.models import Case, CaseCamera, EvidenceItem
from surveillance.cases.records import CaseRecord, ItemRecord
from surveillance.cases.states import CaseState, attach_error
from surveillance.cases.storage import StoredBlob, is_hash
from surveillance.db.fence import Fence
from surveillance.db.orm import Transactions, from_row

# Every fact of the capture is kept with the item, under the same name; the bytes go to
# the evidence store instead.
CAPTURE_FACTS = tuple(f.name for f in fields(Capture))


class ItemStore:
    def __init__(self, transactions: Transactions, sign: custody_log.Signer | None = None) -> None:
        self._transactions = transactions
        self._sign = sign

    def check_attachable(self, number: str) -> CaseRecord:
        """The case, if it exists and takes evidence now; raises otherwise."""
        with self._transactions.begin() as session:
            case = find_case(session, number)
            require(case, attach_error(CaseState(case.state)))
            return case_record(case)

    def add(
        self,
        number: str,
        footage: Footage,
        blob: StoredBlob,
        actor: str,
        fence: Fence | None = None,
    ) -> ItemRecord:
        """Record stored footage as evidence of a case, checking its state again.
        ``fence``: cluster mode's check that this node still holds the camera the footage
        was cut from live (raises LeaseLost; nothing is recorded then)."""
        with self._transactions.begin() as session:
            if fence is not None:
                fence(session.connection(), footage.camera_id)
            case = find_case(session, number, lock=True)
            require(case, attach_error(CaseState(case.state)))
            moment = utcnow()
            facts = {name: getattr(footage, name) for name in CAPTURE_FACTS}
            facts["kind"] = footage.kind.value
            item = EvidenceItem(
                **facts,
                case_id=case.id,
                sha256=blob.sha256,
                size=blob.size,
                attached_at=moment,
                attached_by=actor,
            )
            session.add(item)
            if footage.camera_id not in {c.camera_id for c in case.cameras}:
                case.cameras.append(CaseCamera(camera_id=footage.camera_id))
            case.updated_at = moment
            session.flush()
            # Read back what the database holds, so the entry binds the stored row (times
            # in UTC, floats as stored), the very values `surveillance verify` reads later.
            session.refresh(item)
            record = item_record(item, case.number)
            text = f"{footage.kind.value} from {footage.camera_id}"
            entry = add_timeline_entry(session, case, moment, actor, "evidence", text)
            entry.item_id = item.id
            detail = binding.attach_detail(record)
            custody_log.append(session, case, moment, actor, "attach", item.id, detail, self._sign)
            return record

    def items(self, number: str) -> list[ItemRecord]:
        with self._transactions.begin() as session:
            return items_of(session, find_case(session, number))

    def item(self, number: str, ref: str) -> ItemRecord:
        """An item of the case by its id (digits) or its SHA-256 (64 hex digits)."""
        with self._transactions.begin() as session:
            case = find_case(session, number)
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
            return item_record(item, case.number)

    def owns(self, sha256: str) -> bool:
        """Whether any item of any case holds these bytes."""
        with self._transactions.begin() as session:
            query = select(EvidenceItem.id).where(EvidenceItem.sha256 == sha256).limit(1)
            return session.scalars(query).first() is not None

    def owned_hashes(self) -> set[str]:
        """The SHA-256 of every item's bytes, for finding files no item owns."""
        with self._transactions.begin() as session:
            return set(session.scalars(select(EvidenceItem.sha256).distinct()))

    def all_items(self) -> list[ItemRecord]:
        """Every item of every case, for ``surveillance verify``."""
        with self._transactions.begin() as session:
            rows = session.execute(
                select(EvidenceItem, Case.number)
                .join(Case, Case.id == EvidenceItem.case_id)
                .order_by(EvidenceItem.id)
            ).all()
            return [item_record(item, number) for item, number in rows]


def items_of(session: Session, case: Case) -> list[ItemRecord]:
    """The case's items in the order they were attached, as read in ``session``."""
    rows = session.scalars(
        select(EvidenceItem).where(EvidenceItem.case_id == case.id).order_by(EvidenceItem.id)
    ).all()
    return [item_record(item, case.number) for item in rows]


def item_record(item: EvidenceItem, case_number: str) -> ItemRecord:
    return from_row(ItemRecord, item, case_number=case_number)
