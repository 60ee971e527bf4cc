"""Custody entries are signed with the node's key: a chain rebuilt by a database writer
(the acceptance review's 20 lines: move an item to another camera, rewrite its attach
entry and every later hash, set the case's head) fails `verify` and the re-exported
bundle fails `verify-bundle --expect-fingerprint`, whether the rebuilt entries keep their
old signatures or have none. Entries from before signing are named unsigned and pass."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from surveillance.cases import binding, custody
from surveillance.cases.entry_signatures import load_start, record_start
from surveillance.cases.signing import NodeKey
from surveillance.cases.storage import LocalEvidenceStore
from surveillance.cases.store import CaseStores
from surveillance.cases.verify import verify_store
from tests.cases.helpers import footage
from tests.cases.test_binding import export


def rebuild_chain(engine: Engine, number: str, item_id: int, camera: str, keep_sig: bool) -> None:
    """What a database writer can do with this package: move the item to ``camera`` and
    make every hash of the case's chain consistent again."""
    with engine.begin() as conn:
        case_id = conn.execute(text("SELECT id FROM cases WHERE number = :n"), {"n": number})
        case_id = case_id.scalar_one()
        conn.execute(
            text("UPDATE evidence_items SET camera_id = :c WHERE id = :i"),
            {"c": camera, "i": item_id},
        )
        conn.execute(
            text("INSERT INTO case_cameras (case_id, camera_id) VALUES (:i, :c)"),
            {"i": case_id, "c": camera},
        )
        rows = conn.execute(
            text(
                "SELECT id, seq, at, actor, action, item_id, detail FROM custody_entries "
                "WHERE case_id = :c ORDER BY seq"
            ),
            {"c": case_id},
        ).all()
        prev = custody.genesis_hash(number)
        for row in rows:
            detail = json.loads(row.detail)
            if row.action == "attach" and row.item_id == item_id:
                detail["camera"] = camera
                detail["item"]["camera"] = camera
            at = row.at if isinstance(row.at, datetime) else datetime.fromisoformat(row.at)
            link = custody.Link(
                number, row.seq, custody.iso(at.replace(tzinfo=UTC)), row.actor, row.action,
                row.item_id, detail, prev,
            )  # fmt: skip
            digest = link.digest()
            conn.execute(
                text(
                    "UPDATE custody_entries SET detail = :d, prev_hash = :p, entry_hash = :h"
                    + ("" if keep_sig else ", signature = NULL")
                    + " WHERE id = :id"
                ),
                {
                    "d": custody.canonical_json(detail).decode(),
                    "p": prev,
                    "h": digest,
                    "id": row.id,
                },
            )
            prev = digest
        conn.execute(
            text("UPDATE cases SET custody_head = :h WHERE id = :c"), {"h": prev, "c": case_id}
        )


@pytest.mark.parametrize("keep_sig", [True, False], ids=["old signatures", "signatures removed"])
def test_a_rebuilt_chain_fails_verify_and_the_bundle(
    engine: Engine, tmp_path: Path, keep_sig: bool
) -> None:
    key = NodeKey.load_or_create(tmp_path / "data")
    plain = CaseStores(engine)
    start = record_start(tmp_path / "data", datetime.now(UTC), plain.last_numbers)
    stores = CaseStores(engine, key.sign)
    evidence = LocalEvidenceStore(tmp_path / "ev")
    evidence.prepare()
    number = stores.cases.create(title="signed", reporter="ann", cameras=["cam01"]).number
    item = stores.items.add(number, footage(b"pic"), evidence.put(b"pic"), "bob")
    stores.custody.log_access(number, item.id, "view", "carl")
    assert verify_store(stores, evidence, key.public_raw, start).problems == []

    rebuild_chain(engine, number, item.id, "cam02", keep_sig)
    problems = verify_store(stores, evidence, key.public_raw, start).problems
    expected = (
        "its signature is not the node key's signature of its hash"
        if keep_sig
        else "unsigned, but the case was created after the node began signing"
    )
    assert any(f"case {number} custody entry" in p and expected in p for p in problems), problems
    assert not any("chain broken" in p or "altered" in p for p in problems)  # a clean rebuild

    exported = export(stores, evidence, key, number, tmp_path / "rebuilt.zip", start)
    assert exported.fingerprint == key.fingerprint
    assert any(expected in p for p in exported.problems), exported.problems


def test_unsigned_entries_from_before_signing_pass_and_are_named(
    engine: Engine, tmp_path: Path
) -> None:
    """A node upgraded with cases: their entries stay unsigned and pass; once signing has
    begun, new entries of those cases are signed, and an unsigned entry after them fails."""
    evidence = LocalEvidenceStore(tmp_path / "ev")
    evidence.prepare()
    old = CaseStores(engine)  # before the upgrade: no signatures
    number = old.cases.create(title="old", reporter="ann").number
    data = tmp_path / "data"
    start = record_start(data, datetime.now(UTC), old.last_numbers)
    assert load_start(data) == start and start["last_numbers"] == {number[:4]: 1}
    key = NodeKey.load_or_create(data)
    stores = CaseStores(engine, key.sign)
    stores.cases.comment(number, "ann", "after the upgrade")
    report = verify_store(stores, evidence, key.public_raw, start)
    assert report.problems == []
    assert f"case {number}: 1 custody entry unsigned, older than {start['since']}" in (
        " ".join(report.notes)
    )
    old.cases.comment(number, "mallory", "written without the key")
    problems = verify_store(stores, evidence, key.public_raw, start).problems
    assert any("unsigned, after the signed entry 2" in p for p in problems), problems
    assert binding.CASE_DETAIL_VERSION == 2
