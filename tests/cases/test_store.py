"""The case store (cases, items, custody log) on SQLite and on a real PostgreSQL: numbers,
workflow, filters, concurrency, and a custody chain that names tampered rows."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from surveillance.cases.errors import CaseConflict, CaseNotFound
from surveillance.cases.records import CaseFilter
from surveillance.cases.states import CaseState
from surveillance.cases.storage import LocalEvidenceStore
from surveillance.cases.store import CaseStores
from tests.cases.helpers import footage

S = CaseState


def test_numbers_are_per_year_and_human_readable(stores: CaseStores) -> None:
    first = stores.cases.create(title="a", reporter="ann")
    second = stores.cases.create(title="b", reporter="ann")
    assert re.fullmatch(r"\d{4}-\d{6}", first.number)
    assert int(second.number[-6:]) == int(first.number[-6:]) + 1
    old = stores.cases.create(title="c", reporter="ann", now=datetime(2020, 5, 1, tzinfo=UTC))
    assert old.number == "2020-000001"
    with pytest.raises(CaseNotFound):
        stores.cases.get("2020-999999")


def test_whole_workflow_with_reopen_and_archive(stores: CaseStores, tmp_path: Path) -> None:
    evidence = LocalEvidenceStore(tmp_path / "evidence")
    case = stores.cases.create(title="Slope crack", tags=["geological-hazard"], reporter="ann")
    number = case.number
    with pytest.raises(CaseConflict, match="needs an assignee"):
        stores.cases.transition(number, S.DISPATCHED, "lead")
    stores.cases.transition(number, S.DISPATCHED, "lead", assignee="bob")
    with pytest.raises(CaseConflict, match="cannot move from dispatched to closed"):
        stores.cases.transition(number, S.CLOSED, "lead")
    stores.cases.transition(number, S.IN_PROGRESS, "bob")
    stores.cases.comment(number, "bob", "on site")
    stores.cases.transition(number, S.FEEDBACK, "bob", comment="barrier placed")
    stores.cases.transition(number, S.IN_PROGRESS, "lead", comment="also warn the school")
    stores.cases.transition(number, S.FEEDBACK, "bob")
    stores.cases.transition(number, S.CLOSED, "lead")
    blob = evidence.put(b"picture")
    with pytest.raises(CaseConflict, match="reopen"):
        stores.items.add(number, footage(b"picture"), blob, "bob")
    stores.cases.transition(number, S.IN_PROGRESS, "lead", comment="reopened: new crack")
    stores.items.add(number, footage(b"picture"), blob, "bob")
    stores.cases.transition(number, S.FEEDBACK, "bob")
    stores.cases.transition(number, S.CLOSED, "lead")
    final = stores.cases.transition(number, S.ARCHIVED, "lead")
    assert final.state is S.ARCHIVED and final.assignee == "bob"
    for attempt in (
        lambda: stores.items.add(number, footage(b"picture"), blob, "bob"),
        lambda: stores.cases.comment(number, "bob", "late"),
        lambda: stores.cases.transition(number, S.IN_PROGRESS, "lead"),
        lambda: stores.cases.update(number, "lead", title="new"),
    ):
        with pytest.raises(CaseConflict, match="archived"):
            attempt()
    detail = stores.cases.get(number)
    states = [(t.from_state, t.to_state) for t in detail.timeline if t.kind == "state"]
    assert states[0] == ("reported", "dispatched") and states[-1] == ("closed", "archived")
    assert [t.kind for t in detail.timeline].count("evidence") == 1
    assert detail.case.cameras == ("cam01",)  # linked by the attach
    actions = [e.action for e in stores.custody.entries(number)]
    assert actions[0] == "create" and actions.count("state") == 10 and "attach" in actions
    assert stores.custody.check_chains()[2] == []


def test_filters_and_pagination(stores: CaseStores) -> None:
    start = datetime(2025, 3, 1, tzinfo=UTC)
    for i in range(30):
        stores.cases.create(
            title=f"Case {i} {'flood' if i % 3 == 0 else 'traffic jam'}",
            description="near the 100% river_bank" if i == 7 else "",
            tags=["traffic"] if i % 2 else ["forest-fire"],
            cameras=[f"cam{i % 5:02d}"],
            reporter="ann",
            assignee="bob" if i < 10 else None,
            now=start + timedelta(hours=i),
        )
    page = stores.cases.search(CaseFilter(limit=10, offset=0))
    assert page.total == 30 and len(page.cases) == 10
    assert page.cases[0].created_at > page.cases[-1].created_at  # newest first
    later = stores.cases.search(CaseFilter(limit=10, offset=25))
    assert len(later.cases) == 5
    assert stores.cases.search(CaseFilter(tags=("traffic",))).total == 15
    assert stores.cases.search(CaseFilter(cameras=("cam01", "cam02"))).total == 12
    assert stores.cases.search(CaseFilter(assignee="bob")).total == 10
    assert stores.cases.search(CaseFilter(text="FLOOD")).total == 10
    assert stores.cases.search(CaseFilter(text="100%")).total == 1  # % is literal, not a wildcard
    assert stores.cases.search(CaseFilter(text="0%_r")).total == 0  # _ is literal too
    window = CaseFilter(
        created_from=start + timedelta(hours=5), created_to=start + timedelta(hours=8)
    )
    assert stores.cases.search(window).total == 3
    number = stores.cases.search(CaseFilter(limit=1)).cases[0].number
    stores.cases.transition(number, S.DISPATCHED, "lead", assignee="carl")
    assert stores.cases.search(CaseFilter(states=(S.DISPATCHED,))).cases[0].number == number
    assert stores.cases.search(CaseFilter(states=(S.REPORTED,), tags=("traffic",))).total < 15


def test_concurrent_attaches_and_creates_all_succeed(stores: CaseStores, tmp_path: Path) -> None:
    evidence = LocalEvidenceStore(tmp_path / "evidence")
    number = stores.cases.create(title="busy", reporter="ann").number
    errors: list[BaseException] = []
    numbers: list[str] = []

    def attach(i: int) -> None:
        try:
            data = f"picture {i}".encode()
            stores.items.add(number, footage(data), evidence.put(data), f"user{i}")
            numbers.append(stores.cases.create(title=f"other {i}", reporter="x").number)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=attach, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(stores.items.items(number)) == 8
    assert len(set(numbers)) == 8
    assert [e.seq for e in stores.custody.entries(number)] == list(range(1, 10))
    assert stores.custody.check_chains()[2] == []


def test_custody_chain_names_tampered_and_removed_entries(stores: CaseStores) -> None:
    number = stores.cases.create(title="chain", reporter="ann").number
    stores.cases.transition(number, S.DISPATCHED, "lead", assignee="bob")
    stores.cases.transition(number, S.IN_PROGRESS, "bob")
    assert stores.custody.check_chains()[2] == []
    with stores.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE custody_entries SET actor = 'mallory' WHERE seq = 2 AND case_id = "
                "(SELECT id FROM cases WHERE number = :n)"
            ),
            {"n": number},
        )
    problems = stores.custody.check_chains()[2]
    assert problems == [
        f"case {number} custody entry 2 (state): content does not match its hash (altered)"
    ]
    with stores.engine.begin() as conn:
        conn.execute(
            text(
                "DELETE FROM custody_entries WHERE seq = 3 AND case_id = "
                "(SELECT id FROM cases WHERE number = :n)"
            ),
            {"n": number},
        )
    problems = stores.custody.check_chains()[2]
    assert any("ends at entry 2" in p for p in problems), problems


def test_an_export_is_logged_only_if_the_chain_did_not_move(stores: CaseStores) -> None:
    """A bundle ends with its own export entry: prepared, written, then committed only if
    nothing was appended meanwhile (else the caller writes it again)."""
    number = stores.cases.create(title="export", reporter="ann").number
    view = stores.prepare_export(number, "dora", {"node": "n1"})
    assert [e.action for e in view.custody] == ["create", "export"]
    assert [e.action for e in stores.custody.entries(number)] == ["create"]  # not yet
    stores.cases.transition(number, S.CLOSED, "lead")  # meanwhile
    assert not stores.commit_export(number, view)
    again = stores.prepare_export(number, "dora", {"node": "n1"})
    assert stores.commit_export(number, again)
    entries = stores.custody.entries(number)
    assert [e.action for e in entries] == ["create", "state", "export"]
    assert entries[-1].entry_hash == again.custody[-1].entry_hash
    assert stores.check_cases().problems == []
