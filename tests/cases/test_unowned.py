"""A refused attach removes its file only if no other attach claims the same bytes and no
item owns them (content addressing: two snapshots of one still picture share a file)."""

from __future__ import annotations

from pathlib import Path

from surveillance.cases.storage import LocalEvidenceStore
from surveillance.cases.unowned import AttachClaims, set_aside_unowned


def test_a_shared_or_owned_file_stays(tmp_path: Path) -> None:
    evidence = LocalEvidenceStore(tmp_path / "evidence")
    evidence.prepare()
    claims = AttachClaims()
    sha = evidence.put(b"one still picture").sha256
    with claims.claim(sha), claims.claim(sha):  # two attaches of the same bytes at once
        assert not claims.discard_if_unowned(sha, evidence, lambda _: False)
    assert list(evidence.hashes()) == [sha]
    with claims.claim(sha):
        assert not claims.discard_if_unowned(sha, evidence, lambda _: True)  # an item owns it
        assert list(evidence.hashes()) == [sha]
        assert claims.discard_if_unowned(sha, evidence, lambda _: False)
    assert list(evidence.hashes()) == []


def test_files_no_item_owns_are_moved_out_of_the_store(tmp_path: Path) -> None:
    evidence = LocalEvidenceStore(tmp_path / "evidence")
    evidence.prepare()
    owned = evidence.put(b"owned").sha256
    orphan = evidence.put(b"orphan").sha256
    moved = set_aside_unowned(evidence, {owned})
    assert moved == [str(tmp_path / "evidence-unowned" / orphan)]
    assert list(evidence.hashes()) == [owned]
    assert evidence.set_aside_names() == moved
