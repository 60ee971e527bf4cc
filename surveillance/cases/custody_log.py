"""The custody log in SQL: appending a link inside a change's own transaction, reading a
case's chain, logging views and downloads, and checking every chain.

Appends take the caller's session on purpose: an entry is written in the same transaction
as the change it records, so a failed request leaves neither. Appends to one case's chain
are serialised: the caller locked the case row ``FOR UPDATE`` (PostgreSQL), or the whole
database is locked (SQLite's ``BEGIN IMMEDIATE``, see :mod:`surveillance.db`), before the
head is read here.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from surveillance.cases import custody
from surveillance.cases.lookup import find_case, utcnow
from surveillance.cases.models import Case, CustodyEntry
from surveillance.cases.records import CustodyRecord
from surveillance.db.orm import Transactions, from_row

Signer = Callable[[bytes], bytes]


def append(
    session: Session,
    case: Case,
    moment: datetime,
    actor: str,
    action: str,
    item_id: int | None,
    detail: dict[str, Any],
    sign: Signer | None = None,
) -> None:
    """Add the case's next link in ``session``; ``case`` must be locked (``lock=True``).
    ``sign`` (the node key's) signs the entry's hash; None only where no node runs (tests,
    tools), and verification names such entries unsigned."""
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
    signature = None
    if sign is not None:
        signature = base64.b64encode(sign(custody.signed_message(digest))).decode()
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
            signature=signature,
        )
    )
    case.custody_seq = link.seq
    case.custody_head = digest


def entries(session: Session, case: Case) -> list[CustodyRecord]:
    """The case's chain in order, as read in ``session``."""
    rows = session.scalars(
        select(CustodyEntry).where(CustodyEntry.case_id == case.id).order_by(CustodyEntry.seq)
    )
    return [from_row(CustodyRecord, row, detail=json.loads(row.detail)) for row in rows]


class CustodyLog:
    def __init__(self, transactions: Transactions, sign: Signer | None = None) -> None:
        self._transactions = transactions
        self._sign = sign

    def entries(self, number: str) -> list[CustodyRecord]:
        with self._transactions.begin() as session:
            return entries(session, find_case(session, number))

    def log_access(self, number: str, item_id: int, action: str, actor: str) -> None:
        """Append a ``view`` or ``download`` entry (allowed in every state: it is a log)."""
        with self._transactions.begin() as session:
            case = find_case(session, number, lock=True)
            append(session, case, utcnow(), actor, action, item_id, {}, self._sign)

    def log_failed_export(
        self, number: str, actor: str, reason: str, item_id: int | None = None
    ) -> None:
        """Append an ``export_failed`` entry: someone tried, no bundle left the node. It
        names the item it failed on, if one, so that only who may see the item sees it."""
        with self._transactions.begin() as session:
            case = find_case(session, number, lock=True)
            detail = {"reason": reason}
            append(session, case, utcnow(), actor, "export_failed", item_id, detail, self._sign)

    def check_chains(self) -> tuple[int, int, list[str]]:
        """(cases, entries, problems) over every case's custody chain."""
        problems: list[str] = []
        count = 0
        with self._transactions.begin() as session:
            cases = session.scalars(select(Case).order_by(Case.id)).all()
            for case in cases:
                chain = entries(session, case)
                count += len(chain)
                problems += custody.check_chain(
                    case.number,
                    ((entry.link(case.number), entry.entry_hash) for entry in chain),
                    (case.custody_seq, case.custody_head),
                )
        return len(cases), count, problems
