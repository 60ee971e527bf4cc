"""The content-addressed evidence store: atomic, never overwritten, unreachable by path."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path
from typing import BinaryIO

import pytest

from surveillance.cases.errors import EvidenceWriteError
from surveillance.cases.storage import LocalEvidenceStore


class DiskFullStore(LocalEvidenceStore):
    """The real store whose disk fills up halfway through writing a file.

    A wrapper, not a mock: everything but the data write is the real code path (temp file,
    cleanup, error). No real disk can be told to fill up at a chosen byte on request.
    """

    def _write(self, handle: BinaryIO, data: bytes) -> None:
        handle.write(data[: len(data) // 2])
        handle.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_put_is_content_addressed_read_only_and_never_overwritten(tmp_path: Path) -> None:
    store = LocalEvidenceStore(tmp_path / "ev")
    store.prepare()
    data = os.urandom(3 << 20)  # several write chunks
    first = store.put(data)
    digest = hashlib.sha256(data).hexdigest()
    assert (first.sha256, first.size, first.created) == (digest, len(data), True)
    path = tmp_path / "ev" / digest[:2] / digest
    assert path.stat().st_mode & 0o777 == 0o400  # the service's user only, read-only
    assert path.parent.stat().st_mode & 0o777 == 0o700
    inode = path.stat().st_ino
    again = store.put(data)
    assert not again.created and path.stat().st_ino == inode
    with store.open(digest) as handle:
        assert handle.read() == data
    assert store.hash_of_stored(digest) == digest
    assert list(store.hashes()) == [digest]


def test_storing_bytes_again_over_an_altered_file_keeps_the_genuine_bytes(
    tmp_path: Path,
) -> None:
    """Two snapshots can be the same bytes (a looping or still picture). If the stored file
    was altered meanwhile, the new item must not point at the altered bytes: they are set
    aside (for whoever investigates the first item's failed verify) and stored again."""
    store = LocalEvidenceStore(tmp_path / "ev")
    store.prepare()
    data = b"a still picture" * 1000
    digest = store.put(data).sha256
    path = tmp_path / "ev" / digest[:2] / digest
    path.chmod(0o600)
    path.write_bytes(b"tampered")
    again = store.put(data)
    assert again.created and store.hash_of_stored(digest) == digest
    kept = list((tmp_path / "evidence-altered").iterdir())
    assert len(kept) == 1 and kept[0].read_bytes() == b"tampered"
    # A link planted in the file's place is moved aside, never followed or written through.
    outside = tmp_path / "outside"
    outside.write_bytes(b"not evidence")
    path.chmod(0o600)
    path.unlink()
    path.symlink_to(outside)
    assert store.put(data).created and store.hash_of_stored(digest) == digest
    assert outside.read_bytes() == b"not evidence" and not path.is_symlink()


def test_disk_full_midway_leaves_nothing(tmp_path: Path) -> None:
    store = DiskFullStore(tmp_path / "ev")
    store.prepare()
    with pytest.raises(EvidenceWriteError, match="disk is full") as caught:
        store.put(b"x" * 100_000)
    assert caught.value.disk_full
    assert all_files(tmp_path / "ev") == []


def test_prepare_removes_what_a_crash_left(tmp_path: Path) -> None:
    store = LocalEvidenceStore(tmp_path / "ev")
    store.prepare()
    kept = store.put(b"kept")
    leftover = tmp_path / "ev" / "ab" / ".tmp-deadbeef"
    leftover.parent.mkdir(exist_ok=True)
    leftover.write_bytes(b"half")
    store.prepare()
    assert not leftover.exists()
    assert list(store.hashes()) == [kept.sha256]


@pytest.mark.parametrize(
    "ref",
    ["../../cases.db", "..", "/etc/passwd", "a" * 63, "A" * 64, "g" * 64, "../" + "a" * 61, ""],
)
def test_only_hashes_name_items(tmp_path: Path, ref: str) -> None:
    (tmp_path / "cases.db").write_bytes(b"secret")
    store = LocalEvidenceStore(tmp_path / "ev")
    store.prepare()
    with pytest.raises(KeyError):
        store.open(ref)
    assert store.hash_of_stored(ref) is None and store.size(ref) is None


def test_prepare_makes_an_older_stores_files_private(tmp_path: Path) -> None:
    """Stores written before evidence was private held 0444 files in 0755 directories."""
    digest = hashlib.sha256(b"old").hexdigest()
    old = tmp_path / "ev" / digest[:2] / digest
    old.parent.mkdir(parents=True)
    old.write_bytes(b"old")
    old.chmod(0o444)
    for directory in (old.parent, old.parent.parent):
        directory.chmod(0o755)
    LocalEvidenceStore(tmp_path / "ev").prepare()
    assert old.stat().st_mode & 0o777 == 0o400
    assert {d.stat().st_mode & 0o777 for d in (old.parent, old.parent.parent)} == {0o700}


def test_prepare_never_changes_what_a_link_in_the_store_points_at(tmp_path: Path) -> None:
    """A symbolic link planted in the store (seen in acceptance testing: one to /etc/passwd
    made the node chmod it to 0400) is left alone, and so is its target."""
    target = tmp_path / "outside.txt"
    target.write_text("not evidence")
    target.chmod(0o644)
    (tmp_path / "ev" / "a6").mkdir(parents=True)
    (tmp_path / "ev" / "a6" / "link").symlink_to(target)
    LocalEvidenceStore(tmp_path / "ev").prepare()
    assert target.stat().st_mode & 0o777 == 0o644
