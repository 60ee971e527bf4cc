"""The case store: cases, evidence items and the custody log, three parts on one engine.

Each part has one job (:mod:`.case_store`, :mod:`.item_store`, :mod:`.custody_log`) and
opens its own transactions with the one shared :class:`~surveillance.db.orm.Transactions`.
Every change to a case happens in one transaction that also appends to its custody chain,
so a failed request leaves the case exactly as it was. Appends to one case's chain are
serialised: the case row is locked ``FOR UPDATE`` (PostgreSQL) or the whole database is
(SQLite's ``BEGIN IMMEDIATE``, see :mod:`surveillance.db`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select

from surveillance.cases import binding, custody, custody_log
from surveillance.cases.case_store import CaseStore, case_detail
from surveillance.cases.custody_log import CustodyLog
from surveillance.cases.entry_signatures import Signed, check_signatures
from surveillance.cases.item_store import ItemStore, items_of
from surveillance.cases.lookup import find_case, utcnow
from surveillance.cases.models import Case, CaseCounter
from surveillance.cases.records import CustodyRecord, ExportView
from surveillance.db.orm import Transactions


@dataclass
class CasesCheck:
    """What checking every case's chain and rows found (``surveillance verify``)."""

    cases: int = 0
    custody_entries: int = 0
    unbound_items: int = 0  # attached before item records were bound (see .binding)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what is bound only partly


class CaseStores:
    def __init__(self, engine: Engine, sign: custody_log.Signer | None = None) -> None:
        """``sign``: the node key's, for every new custody entry (None: entries unsigned,
        for tools and tests that run no node)."""
        self.engine = engine
        self._transactions = Transactions(engine)
        self._sign = sign
        self.cases = CaseStore(self._transactions, sign)
        self.items = ItemStore(self._transactions, sign)
        self.custody = CustodyLog(self._transactions, sign)

    def prepare_export(self, number: str, actor: str, detail: dict[str, Any]) -> ExportView:
        """What a bundle holds, its custody log ending with the entry for its own export,
        read in one transaction that is then rolled back: the export is logged only once
        its bundle is written (:meth:`commit_export`)."""
        with self._transactions.rehearse() as session:
            case = find_case(session, number, lock=True)
            custody_log.append(session, case, utcnow(), actor, "export", None, detail, self._sign)
            session.flush()
            items = items_of(session, case)
            return ExportView(
                case_detail(session, case),
                tuple(items),
                tuple(custody_log.entries(session, case)),
            )

    def commit_export(self, number: str, view: ExportView) -> bool:
        """Append the export entry ``view`` ends with, exactly as the bundle holds it; False
        (nothing appended) if the chain moved on since, so the bundle is out of date."""
        entry = view.custody[-1]
        with self._transactions.begin() as session:
            case = find_case(session, number, lock=True)
            if (case.custody_seq, case.custody_head) != (entry.seq - 1, entry.prev_hash):
                return False
            custody_log.append(
                session, case, entry.at, entry.actor, entry.action, None, entry.detail, self._sign
            )
            if case.custody_head != entry.entry_hash:
                raise AssertionError("the export entry differs from the one in its bundle")
            return True

    def last_numbers(self) -> dict[str, int]:
        """The last case number given out, per year (when entry signing begins)."""
        with self._transactions.begin() as session:
            counters = session.scalars(select(CaseCounter)).all()
            return {str(c.year): c.last for c in counters}

    def check_cases(
        self,
        public: bytes | None = None,
        signing_start: Mapping[str, Any] | None = None,
        also: Sequence[bytes] = (),
    ) -> CasesCheck:
        """Every case's custody chain intact and signed (by the key ``public``, or one of
        the other nodes' keys ``also``, since ``signing_start``), its items, state, facts
        and comments held to its entries."""
        result = CasesCheck()
        with self._transactions.begin() as session:
            for case in session.scalars(select(Case).order_by(Case.id)).all():
                chain = custody_log.entries(session, case)
                result.cases += 1
                result.custody_entries += len(chain)
                result.problems += custody.check_chain(
                    case.number,
                    ((entry.link(case.number), entry.entry_hash) for entry in chain),
                    (case.custody_seq, case.custody_head),
                )
                items = [binding.item_json(item) for item in items_of(session, case)]
                bound = binding.check_case(case.number, case.state, items, _entries(chain))
                result.unbound_items += bound.unbound_items
                result.problems += bound.problems
                detail = case_detail(session, case)
                facts = binding.check_case_facts(
                    case.number,
                    binding.record_json(detail.case, binding.CASE_KEYS),
                    [binding.record_json(t, binding.TIMELINE_KEYS) for t in detail.timeline],
                    _entries(chain),
                )
                result.problems += facts.problems
                result.notes += facts.partly_bound
                signed = [
                    Signed(e.seq, e.action, custody.iso(e.at), e.entry_hash, e.signature)
                    for e in chain
                ]
                problems, notes = check_signatures(case.number, signed, public, signing_start, also)
                result.problems += problems
                result.notes += notes
        return result


def _entries(chain: list[CustodyRecord]) -> list[binding.Entry]:
    return [
        binding.Entry(e.seq, e.action, e.item_id, e.detail, e.actor, custody.iso(e.at))
        for e in chain
    ]
