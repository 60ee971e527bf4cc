"""Item rows and case states are bound into the custody chain: one SQL statement changing
an item's facts, deleting or moving its row, or changing a case's state fails
`surveillance verify`, and a bundle exported from such a database fails `verify-bundle`
even with the genuine node key expected. Data and bundles written before the binding
(version-1 attach entries) still verify."""

from __future__ import annotations

import io
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from surveillance import db
from surveillance.cases.bundle import BundleReport, verify_bundle, write_bundle
from surveillance.cases.records import CaseFilter
from surveillance.cases.signing import NodeKey
from surveillance.cases.states import CaseState as S
from surveillance.cases.storage import LocalEvidenceStore
from surveillance.cases.store import CaseStores
from surveillance.cases.verify import verify_store
from tests.cases.helpers import export_view, footage

DATA = Path(__file__).with_name("data")
# tests/cases/data/README.md says how these were made with main at a3edb3b.
V1_FINGERPRINT = "sha256:818fbaf139a4b2ea1888822ea9e4fa25a14ce8197ace3a591eca842bb62f6218"
V1_MEDIA = (b"\xff\xd8old snapshot bytes\xff\xd9", b"old clip bytes " * 50)

TAMPERING = {
    "camera": (
        "UPDATE evidence_items SET camera_id = 'cam09' WHERE id = :item",
        "camera is 'cam09' in its record but 'cam01'",
    ),
    "capture time": (
        "UPDATE evidence_items SET captured_at = '2020-01-01 00:00:00.000000' WHERE id = :item",
        "captured_at is '2020-01-01T00:00:00.000000+00:00' in its record",
    ),
    "attached by": (
        "UPDATE evidence_items SET attached_by = 'mallory' WHERE id = :item",
        "attached_by is 'mallory' in its record but 'bob'",
    ),
    "another clip's hash": (
        "UPDATE evidence_items SET sha256 = (SELECT sha256 FROM evidence_items WHERE id = "
        ":other), size = (SELECT size FROM evidence_items WHERE id = :other) WHERE id = :item",
        "sha256 is",
    ),
    "row deleted": (
        "DELETE FROM evidence_items WHERE id = :item",
        "which the case does not hold (its row was deleted or moved)",
    ),
    "row moved to another case": (
        "UPDATE evidence_items SET case_id = (SELECT id FROM cases WHERE number = :decoy) "
        "WHERE id = :item",
        "which the case does not hold (its row was deleted or moved)",
    ),
    "case state": (
        "UPDATE cases SET state = 'reported' WHERE number = :number",
        "state is 'reported', but its last state entry (5) leaves it 'in_progress'",
    ),
}


@pytest.mark.parametrize("tampering", list(TAMPERING))
def test_a_changed_row_or_state_fails_verify_and_the_bundle(
    stores: CaseStores, tmp_path: Path, tampering: str
) -> None:
    evidence = LocalEvidenceStore(tmp_path / "evidence")
    evidence.prepare()
    number = stores.cases.create(title="bound", reporter="ann").number
    decoy = stores.cases.create(title="decoy", reporter="ann").number
    first, second = b"first picture", b"second picture"
    item = stores.items.add(number, footage(first), evidence.put(first), "bob")
    other = stores.items.add(number, footage(second, "cam02"), evidence.put(second), "carl")
    stores.cases.transition(number, S.DISPATCHED, "lead", assignee="bob")
    stores.cases.transition(number, S.IN_PROGRESS, "bob")
    key = NodeKey.load_or_create(tmp_path / "key")
    assert verify_store(stores, evidence).problems == []
    assert export(stores, evidence, key, number, tmp_path / "before.zip").problems == []

    statement, expected = TAMPERING[tampering]
    with stores.engine.begin() as conn:
        conn.execute(
            text(statement), {"item": item.id, "other": other.id, "number": number, "decoy": decoy}
        )
    problems = verify_store(stores, evidence).problems
    assert any(expected in p and f"case {number}" in p for p in problems), problems

    # The node signs what its rows say, but the bundle's own chain contradicts them.
    report = export(stores, evidence, key, number, tmp_path / "after.zip")
    assert report.fingerprint == key.fingerprint
    assert any(expected in p for p in report.problems), report.problems


def export(
    stores: CaseStores,
    evidence: LocalEvidenceStore,
    key: NodeKey,
    number: str,
    path: Path,
    signing_start: dict[str, Any] | None = None,
) -> BundleReport:
    view = export_view(stores, number, "dora", {"node": "n1", "fingerprint": key.fingerprint})
    out = io.BytesIO()
    write_bundle(out, view, evidence, key, "n1", "dora", datetime.now(UTC), signing_start)
    path.write_bytes(out.getvalue())
    return verify_bundle(str(path), key.fingerprint)


def old_node(tmp_path: Path) -> tuple[CaseStores, LocalEvidenceStore]:
    """A node's database and evidence as main at a3edb3b wrote them, brought up to date
    by the migrations the way a starting node does."""
    path = tmp_path / "cases.db"
    with sqlite3.connect(path) as conn:
        conn.executescript((DATA / "node-v1.sql").read_text())
    conn.close()
    engine = db.create_db_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    evidence = LocalEvidenceStore(tmp_path / "evidence")
    evidence.prepare()
    for media in V1_MEDIA:
        evidence.put(media)
    return CaseStores(engine), evidence


def test_data_written_before_the_binding_still_verifies(tmp_path: Path) -> None:
    stores, evidence = old_node(tmp_path)
    report = verify_store(stores, evidence)
    assert report.problems == [] and report.items == 2 and report.unbound_items == 2
    # What a version-1 entry did record is still held to the row.
    with stores.engine.begin() as conn:
        conn.execute(text("UPDATE evidence_items SET camera_id = 'cam09' WHERE id = 2"))
        conn.execute(text("UPDATE cases SET state = 'closed'"))
    problems = verify_store(stores, evidence).problems
    assert any("item 2" in p and "camera is 'cam09'" in p for p in problems), problems
    assert any("state is 'closed'" in p for p in problems), problems
    stores.engine.dispose()


def test_a_bundle_exported_before_the_binding_still_verifies(tmp_path: Path) -> None:
    report = verify_bundle(str(DATA / "bundle-v1.zip"), V1_FINGERPRINT)
    assert report.problems == [] and report.items == 2 and report.unbound_items == 2
    assert report.fingerprint_checked


def test_new_attaches_bind_the_whole_item_record(stores: CaseStores, tmp_path: Path) -> None:
    evidence = LocalEvidenceStore(tmp_path / "evidence")
    number = stores.cases.create(title="bound", reporter="ann").number
    data = b"a picture"
    item = stores.items.add(number, footage(data), evidence.put(data), "bob")
    attach = stores.custody.entries(number)[-1]
    assert attach.detail["v"] == 2 and attach.detail["sha256"] == item.sha256
    assert attach.detail["item"]["attached_by"] == "bob"
    assert attach.detail["item"]["camera"] == "cam01" and attach.detail["item"]["id"] == item.id
    shutil.rmtree(tmp_path / "evidence")


CASE_WHERE = "WHERE number = :number"
COMMENT_WHERE = "WHERE kind = 'comment' AND case_id = (SELECT id FROM cases WHERE number = :number)"
# The acceptance review's SQL edits of a case's own facts and timeline (finding F4).
CASE_TAMPERING = {
    "reporter": (
        f"UPDATE cases SET reporter = 'admin1' {CASE_WHERE}",
        "reporter is 'admin1' in its row but 'ann' in custody entry 1 (create)",
    ),
    "title and description": (
        f"UPDATE cases SET title = 'Forged title', description = 'forged' {CASE_WHERE}",
        "title is 'Forged title' in its row but 'Flooded underpass' in custody entry 3 (edit)",
    ),
    "created at": (
        f"UPDATE cases SET created_at = '2025-01-01 00:00:00.000000' {CASE_WHERE}",
        "created_at is '2025-01-01T00:00:00.000000+00:00' in its row",
    ),
    "assignee": (
        f"UPDATE cases SET assignee = 'admin1' {CASE_WHERE}",
        "assignee is 'admin1' in its row but 'hand1' in custody entry 4 (state)",
    ),
    "place": (
        f"UPDATE cases SET place = 'elsewhere' {CASE_WHERE}",
        "place is 'elsewhere' in its row but 'Bridge St' in custody entry 3 (edit)",
    ),
    "tag added": (
        "INSERT INTO case_tags (case_id, tag) SELECT id, 'forged' FROM cases " + CASE_WHERE,
        "tags is ['forged', 'traffic'] in its row but ['traffic']",
    ),
    "comment": (
        f"UPDATE timeline_entries SET text = 'forged comment', actor = 'admin1' {COMMENT_WHERE}",
        "differs from custody entry 5 (comment) in its author, time or text (altered)",
    ),
    "comment deleted": (
        f"DELETE FROM timeline_entries {COMMENT_WHERE}",
        "0 comment(s) on its timeline, but its custody entries record 1",
    ),
}


@pytest.mark.parametrize("tampering", list(CASE_TAMPERING))
def test_a_changed_case_row_or_comment_fails_verify_and_the_bundle(
    stores: CaseStores, tmp_path: Path, tampering: str
) -> None:
    evidence = LocalEvidenceStore(tmp_path / "evidence")
    evidence.prepare()
    number = stores.cases.create(
        title="Case A", description="water", tags=["traffic"], cameras=["cam01"], reporter="ann"
    ).number
    stores.items.add(number, footage(b"pic", "cam02"), evidence.put(b"pic"), "bob")
    stores.cases.update(number, "ann", title="Flooded underpass", place="Bridge St")
    stores.cases.transition(number, S.DISPATCHED, "lead", assignee="hand1")
    stores.cases.comment(number, "hand1", "on my way")
    key = NodeKey.load_or_create(tmp_path / "key")
    report = verify_store(stores, evidence)
    assert report.problems == [] and not any("bound only partly" in n for n in report.notes)
    assert export(stores, evidence, key, number, tmp_path / "before.zip").problems == []

    statement, expected = CASE_TAMPERING[tampering]
    with stores.engine.begin() as conn:
        conn.execute(text(statement), {"number": number})
    problems = verify_store(stores, evidence).problems
    assert any(expected in p and f"case {number}" in p for p in problems), problems
    report = export(stores, evidence, key, number, tmp_path / "after.zip")
    assert any(expected in p for p in report.problems), report.problems


def test_old_cases_are_reported_bound_only_partly_and_still_pass(tmp_path: Path) -> None:
    stores, evidence = old_node(tmp_path)
    report = verify_store(stores, evidence)
    assert report.problems == []
    assert any("bound only partly" in n for n in report.notes), report.notes
    # The reporter and creation time are held even for old cases (the create entry's).
    with stores.engine.begin() as conn:
        conn.execute(text("UPDATE cases SET reporter = 'mallory'"))
    problems = verify_store(stores, evidence).problems
    assert any("reporter is 'mallory' in its row but 'ann'" in p for p in problems), problems
    with stores.engine.begin() as conn:
        conn.execute(text("UPDATE cases SET reporter = 'ann'"))
    # After its next edit an old case is bound whole; comments made before stay unbound.
    with stores.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO timeline_entries (case_id, at, actor, kind, text) SELECT id, "
                "'2026-11-30 10:30:00.000000', 'bob', 'comment', 'old comment' FROM cases"
            )
        )
    number = stores.cases.search(CaseFilter()).cases[0].number
    stores.cases.update(number, "lead", description="now bound")
    stores.cases.comment(number, "lead", "bound too")
    report = verify_store(stores, evidence)
    assert report.problems == [] and not any("bound only partly" in n for n in report.notes)
    assert any("first 1 comment(s) predate binding" in n for n in report.notes), report.notes
    with stores.engine.begin() as conn:
        conn.execute(text("UPDATE cases SET title = 'forged'"))
    assert any("title is 'forged'" in p for p in verify_store(stores, evidence).problems)
    stores.engine.dispose()


def test_an_old_bundle_says_its_case_is_bound_only_partly(tmp_path: Path) -> None:
    report = verify_bundle(str(DATA / "bundle-v1.zip"), V1_FINGERPRINT)
    assert report.problems == []
    assert any("bound only partly" in n for n in report.notes), report.notes
