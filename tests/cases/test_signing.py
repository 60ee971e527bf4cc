"""The node's key file: written atomically, a full disk answered with 507, a broken or
emptied file named and never silently replaced (a new key would make every genuine
signature look forged)."""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path
from typing import Any, BinaryIO, cast

import pytest
from sqlalchemy import Engine

from surveillance.cases import signing
from surveillance.cases.errors import ExportFailed, NodeKeyBroken, NodeKeyWriteError
from surveillance.cases.service import CaseService
from surveillance.cases.signing import KEY_FILE, NodeKey
from surveillance.cases.storage import LocalEvidenceStore
from tests.cases.helpers import footage


def _full_disk_halfway(handle: BinaryIO, pem: bytes) -> None:
    # The real write path up to the data: temp file, then the disk fills mid-file.
    handle.write(pem[: len(pem) // 2])
    handle.flush()
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_leaves_no_key_file_and_answers_507(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patched:
        patched.setattr(signing, "_write_all", _full_disk_halfway)
        with pytest.raises(NodeKeyWriteError, match="disk is full") as caught:
            NodeKey.load_or_create(tmp_path)
    assert caught.value.status_code == 507
    assert list(tmp_path.iterdir()) == []  # no key file, empty or not, no temp file
    key = NodeKey.load_or_create(tmp_path)  # space freed: the key is made
    assert (tmp_path / KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert NodeKey.load_or_create(tmp_path).fingerprint == key.fingerprint
    assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE]


@pytest.mark.parametrize(
    "content",
    [b"-----BEGIN PRIVATE KEY-----\ntrunc", b"\x00" * 40, b""],  # b"": a key emptied later
)
def test_a_broken_key_file_is_named_and_kept(tmp_path: Path, content: bytes) -> None:
    (tmp_path / KEY_FILE).write_bytes(content)
    with pytest.raises(NodeKeyBroken, match=KEY_FILE) as caught:
        NodeKey.load_or_create(tmp_path)
    assert "restore it" in str(caught.value)
    assert (tmp_path / KEY_FILE).read_bytes() == content  # never replaced


def test_an_unreadable_key_file_is_named(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE).mkdir()  # read fails with EISDIR, even as root
    with pytest.raises(NodeKeyBroken, match="Is a directory"):
        NodeKey.load_or_create(tmp_path)


class FullDiskFile(io.BytesIO):
    """A bundle's spool whose disk fills after ``room`` bytes."""

    def __init__(self, room: int) -> None:
        super().__init__()
        self.room = room

    def write(self, data: Any) -> int:
        if self.tell() + len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(data)


def test_a_full_disk_while_writing_a_bundle_is_507_and_logged_as_failed(
    engine: Engine, tmp_path: Path
) -> None:
    evidence = LocalEvidenceStore(tmp_path / "ev")
    service = CaseService(engine, evidence, cast(Any, None), tmp_path, lambda name: True)
    service.open()
    number = service.create(title="full", reporter="ann").number
    media = os.urandom(200_000)
    service.stores.items.add(number, footage(media), evidence.put(media), "bob")
    with pytest.raises(ExportFailed, match="disk is full") as caught:
        service.export(number, "dora", FullDiskFile(100_000))
    assert caught.value.status_code == 507
    actions = [e.action for e in service.custody(number)]
    assert actions[-1] == "export_failed" and "export" not in actions
    assert service.custody(number)[-1].signature is not None  # signed like every entry


def test_verify_names_the_key_files_state(tmp_path: Path) -> None:
    from surveillance.cases.signing import key_status

    assert "no signing key yet" in str(key_status(tmp_path).note)
    (tmp_path / KEY_FILE).write_bytes(b"")
    empty = key_status(tmp_path)
    assert empty.public_raw is None and "is empty" in str(empty.problem)
    (tmp_path / KEY_FILE).write_bytes(b"garbage")
    broken = key_status(tmp_path)
    assert broken.public_raw is None and "cannot be used" in str(broken.problem)
    (tmp_path / KEY_FILE).unlink()
    key = NodeKey.load_or_create(tmp_path)
    assert key_status(tmp_path).public_raw == key.public_raw
