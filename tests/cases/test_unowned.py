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


def _plant_strays(root: Path, genuine: str) -> dict[str, str]:
    """Each kind of name that is no item file, as the acceptance review planted them;
    returns path (relative to the store) -> kind."""
    (root / "stray.txt").write_bytes(b"stray")
    (root / "zz").mkdir()
    (root / "zz" / "notahash").write_bytes(b"a full copy of a clip")
    (root / "00").mkdir()
    (root / "00" / genuine).write_bytes(b"genuine bytes, wrong prefix")
    (root / genuine[:2] / ".hidden").write_bytes(b"hidden")
    (root / genuine[:2] / "link").symlink_to("/etc/passwd")
    (root / genuine[:2] / "subdir").mkdir()
    (root / "toplink").symlink_to(root / genuine[:2])  # a link to a directory
    (root / genuine[:2] / ("f" * 64)).symlink_to("/etc/hostname")  # a link named by a hash
    return {
        "stray.txt": "file",
        "zz": "directory",
        f"00/{genuine}": "misplaced",
        f"{genuine[:2]}/.hidden": "hidden file",
        f"{genuine[:2]}/link": "symlink",
        f"{genuine[:2]}/subdir": "directory",
        "toplink": "symlink",
        f"{genuine[:2]}/{'f' * 64}": "symlink",
    }


def test_every_name_that_is_no_item_file_is_found_and_cleared_at_start(tmp_path: Path) -> None:
    import os

    store = LocalEvidenceStore(tmp_path / "ev")
    store.prepare()
    genuine = store.put(b"genuine").sha256
    planted = _plant_strays(tmp_path / "ev", genuine)
    passwd_mode = os.stat("/etc/passwd").st_mode
    store.prepare()  # never follows a link to change a mode
    assert os.stat("/etc/passwd").st_mode == passwd_mode
    found = {str(e.path.relative_to(tmp_path / "ev")): e.kind for e in store.strays()}
    assert found == planted
    assert list(store.hashes()) == [genuine]

    done = set_aside_unowned(store, {genuine})
    assert len(done) == len(planted)
    assert store.strays() == [] and list(store.hashes()) == [genuine]
    assert os.path.exists("/etc/passwd") and os.stat("/etc/passwd").st_mode == passwd_mode
    aside = sorted(p.name for p in store.unowned_root.iterdir())
    assert aside == sorted(
        f"stray-{name.replace('/', '_')}" for name, kind in planted.items() if kind != "symlink"
    )
    assert (store.unowned_root / "stray-zz" / "notahash").read_bytes().startswith(b"a full")


def test_verify_names_every_stray_kind(tmp_path: Path) -> None:
    from surveillance import db
    from surveillance.cases.store import CaseStores
    from surveillance.cases.verify import verify_store

    engine = db.create_db_engine(f"sqlite:///{tmp_path / 'cases.db'}")
    db.upgrade(engine)
    store = LocalEvidenceStore(tmp_path / "ev")
    store.prepare()
    (tmp_path / "ev" / "a6").mkdir()
    planted = _plant_strays(tmp_path / "ev", "a6" + "0" * 62)
    report = verify_store(CaseStores(engine), store)
    engine.dispose()
    assert not report.ok
    for name, kind in planted.items():
        assert any(p.startswith(f"{tmp_path / 'ev' / name}: {kind} in") for p in report.problems)
