"""The case store: cases, evidence items and the custody log, three parts on one engine.

Each part has one job (:mod:`.case_store`, :mod:`.item_store`, :mod:`.custody_log`) and
opens its own transactions with the one shared :class:`~surveillance.db.orm.Transactions`.
Every change to a case happens in one transaction that also appends to its custody chain,
so a failed request leaves the case exactly as it was. Appends to one case's chain are
serialised: the case row is locked ``FOR UPDATE`` (PostgreSQL) or the whole database is
(SQLite's ``BEGIN IMMEDIATE``, see :mod:`surveillance.db`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from surveillance.cases import custody_log
from surveillance.cases.case_store import CaseStore, case_detail
from surveillance.cases.custody_log import CustodyLog
from surveillance.cases.item_store import ItemStore, items_of
from surveillance.cases.lookup import find_case, utcnow
from surveillance.cases.records import ExportView
from surveillance.db.orm import Transactions


class CaseStores:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._transactions = Transactions(engine)
        self.cases = CaseStore(self._transactions)
        self.items = ItemStore(self._transactions)
        self.custody = CustodyLog(self._transactions)

    def export_view(self, number: str, actor: str, detail: dict[str, Any]) -> ExportView:
        """Log an export and read what the bundle holds, in one transaction: the bundle's
        custody log ends with the entry for its own export."""
        with self._transactions.begin() as session:
            case = find_case(session, number, lock=True)
            custody_log.append(session, case, utcnow(), actor, "export", None, detail)
            session.flush()
            items = items_of(session, case)
            return ExportView(
                case_detail(session, case),
                tuple(items),
                tuple(custody_log.entries(session, case)),
            )
