"""Custody logs against the audit log: what the chains' own signatures cannot show.

Removing a case's newest custody entries, and setting its head back, leaves a chain of
genuine signed entries. The audit log records the same attaches, reads and exports in
another, append-only table (its triggers refuse updates and deletes), so a case whose
audit entries outnumber its custody entries of the same kind has lost entries. The
check only flags more in the audit log: fewer is normal (cases made by tools or tests
that write no audit, an audit entry lost in a crash). A writer who can drop the audit
log's triggers can cut both, which the README says.
"""

from __future__ import annotations

import json
from collections import Counter

from sqlalchemy import Engine, func, select

from surveillance.auth.audit import AuditAction
from surveillance.auth.tables import AuditRow
from surveillance.cases.models import Case, CustodyEntry

# The audit actions that each have one custody entry of this action when they succeed.
CUSTODY_OF = {
    AuditAction.EVIDENCE_SNAPSHOT.value: "attach",
    AuditAction.EVIDENCE_CLIP.value: "attach",
    AuditAction.EVIDENCE_VIEW.value: "view",
    AuditAction.EVIDENCE_DOWNLOAD.value: "download",
    AuditAction.CASE_EXPORT.value: "export",
}


def custody_against_audit(engine: Engine) -> list[str]:
    """Problems: cases whose audit log holds more successful attaches, reads or exports
    than their custody log records (its newest entries removed)."""
    audited: Counter[tuple[str, str]] = Counter()
    recorded: Counter[tuple[str, str]] = Counter()
    with engine.connect() as connection:
        rows = connection.execute(
            select(AuditRow.action, AuditRow.detail).where(
                AuditRow.outcome == "ok", AuditRow.action.in_(list(CUSTODY_OF))
            )
        )
        for action, detail in rows:
            try:
                number = json.loads(detail).get("case")
            except (ValueError, AttributeError):
                continue
            if isinstance(number, str):
                audited[(number, CUSTODY_OF[action])] += 1
        counts = connection.execute(
            select(Case.number, CustodyEntry.action, func.count())
            .join(Case, Case.id == CustodyEntry.case_id)
            .group_by(Case.number, CustodyEntry.action)
        )
        for number, action, count in counts:
            recorded[(number, action)] = count
    return [
        f"case {number}: the audit log records {count} successful {action} "
        f"action(s), its custody log only {recorded[(number, action)]} (custody entries "
        "removed from its end?)"
        for (number, action), count in sorted(audited.items())
        if count > recorded[(number, action)]
    ]
