"""Cluster mode: two nodes with keys of their own sign entries of one case; verification
on either node, and of the bundle either exports, accepts both nodes' signatures (the keys
published in the shared directory) and still refuses a key no node published. The shared
evidence store leaves alone what may be another node's write under way."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import Engine

from surveillance.cases import key_ring
from surveillance.cases.bundle import verify_bundle
from surveillance.cases.commands import verify_command
from surveillance.cases.entry_signatures import load_start
from surveillance.cases.service import CaseService
from surveillance.cases.signing import NodeKey
from surveillance.cases.storage import SHARED_SETTLE_S, LocalEvidenceStore
from surveillance.cases.unowned import set_aside_unowned
from surveillance.cases.verify import verify_store
from surveillance.config.models import AppConfig
from tests.cases.helpers import footage


def node(engine: Engine, tmp_path: Path, node_id: str) -> CaseService:
    shared = tmp_path / "shared"
    evidence = LocalEvidenceStore(shared / "evidence", shared=True)
    service = CaseService(
        engine, evidence, cast(Any, None), tmp_path / node_id, lambda name: True,
        node_name=node_id, key_ring=shared,
    )  # fmt: skip
    service.open()
    return service


def test_entries_signed_by_any_node_verify_on_every_node_and_in_bundles(
    engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = node(engine, tmp_path, "node-a"), node(engine, tmp_path, "node-b")
    assert a.key.fingerprint != b.key.fingerprint
    assert key_ring.read_keys(tmp_path / "shared") == {
        "node-a": a.key.public_raw,
        "node-b": b.key.public_raw,
    }
    number = a.create(title="two nodes", reporter="ann").number
    item = b.stores.items.add(number, footage(b"pic"), b.evidence.put(b"pic"), "bob")
    a.stores.custody.log_access(number, item.id, "view", "carl")
    signers = {e.actor: e.signature for e in a.custody(number)}
    assert signers["bob"] and signers["carl"]

    start_a = load_start(tmp_path / "node-a")
    # One key alone: the other node's entries look forged; with the published keys, all hold.
    alone = verify_store(a.stores, a.evidence, a.key.public_raw, start_a).problems
    assert any("not the node key's signature" in p for p in alone)
    for me in (a, b):
        others = list(me.cluster_keys().values())
        assert len(others) == 1
        start = load_start(tmp_path / me.node_name)
        assert verify_store(me.stores, me.evidence, me.key.public_raw, start, others).ok

    # Either node's bundle verifies against its exporter's fingerprint and names the other key.
    for me, other in ((a, b), (b, a)):
        out = io.BytesIO()
        me.export(number, "dora", out)
        path = tmp_path / f"{me.node_name}.zip"
        path.write_bytes(out.getvalue())
        report = verify_bundle(str(path), me.key.fingerprint)
        assert report.ok, report.problems
        assert any(other.key.fingerprint in note for note in report.notes)

    # `surveillance verify` on node b's config reads the published keys.
    config_b = AppConfig.model_validate(
        {
            "server": {"data_dir": str(tmp_path / "node-b")},
            "database": {"url": engine.url.render_as_string(hide_password=False)},
            "cluster": {
                "enabled": True, "node_id": "node-b", "url": "http://127.0.0.1:8081",
                "shared_dir": str(tmp_path / "shared"),
            },
        }
    )  # fmt: skip
    assert verify_command(config_b) == 0
    said = capsys.readouterr().out
    assert "carry a cluster node key's signatures" in said
    assert f"node-a {a.key.fingerprint}" in said and f"node-b {b.key.fingerprint}" in said

    # An entry signed by a key no node published fails, with the cluster's keys at hand.
    stranger = NodeKey.load_or_create(tmp_path / "stranger")
    c = CaseService(
        engine, a.evidence, cast(Any, None), tmp_path / "stranger", lambda name: True,
        node_name="node-c",
    )  # fmt: skip
    c.open()
    c.stores.custody.log_access(number, item.id, "view", "eve")
    assert c.key.fingerprint == stranger.fingerprint
    everyone = [a.key.public_raw, b.key.public_raw]
    problems = verify_store(a.stores, a.evidence, None, start_a, everyone).problems
    assert any("(view)" in p and "any cluster node key's" in p for p in problems)
    assert verify_command(config_b) == 1
    assert "(view): its signature is not any cluster node key's" in capsys.readouterr().out


def test_the_shared_store_leaves_young_leftovers_for_their_writer(tmp_path: Path) -> None:
    shared = LocalEvidenceStore(tmp_path / "ev", shared=True)
    shared.prepare()
    blob = shared.put(b"an attach of another node, row not committed yet")
    temp = shared.root / "ab" / ".tmp-0123456789abcdef"
    temp.parent.mkdir(mode=0o700, exist_ok=True)
    temp.write_bytes(b"half written")
    shared.prepare()
    assert temp.exists() and set_aside_unowned(shared, set()) == []
    assert list(shared.hashes()) == [blob.sha256]

    old = time.time() - SHARED_SETTLE_S - 60
    for path in (temp, shared.root / blob.sha256[:2] / blob.sha256):
        os.utime(path, (old, old), follow_symlinks=False)
    shared.prepare()
    assert not temp.exists()
    assert len(set_aside_unowned(shared, set())) == 1 and list(shared.hashes()) == []

    # A store only this node writes removes them at once, as before.
    alone = LocalEvidenceStore(tmp_path / "ev2")
    alone.prepare()
    alone.put(b"refused attach")
    assert len(set_aside_unowned(alone, set())) == 1
