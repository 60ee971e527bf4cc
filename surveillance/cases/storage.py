"""Where evidence bytes live: a content-addressed store behind a small interface.

Items are named by the SHA-256 of their bytes, so a name is also a check: reading an item
back and hashing it proves it unaltered. The only identifiers accepted are 64 lower-case
hex digits, so no request can name a path. Evidence is never deleted (retention is a
decision for later, and never while its case is open); what can go is bytes that no
item owns, which an attach stored before its row was refused: :meth:`discard` removes
them right away, :meth:`set_aside` moves those found at start out of the store.

:class:`EvidenceStore` is the interface the case layer uses, and it is kept ready for an
object store (S3 and the like): every operation names an item by its hash alone (put,
open, size, exists via ``size``/``hash_of_stored``, discard, a listing), never a path,
rename or directory; ``put`` must be atomic and never overwrite, which an object store's
conditional put gives. :class:`LocalEvidenceStore` keeps items on a local or shared
(network) file system: in cluster mode every node uses one directory under
``cluster.shared_dir``, so any node serves any item (see ``shared`` below).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from surveillance.cases.errors import EvidenceWriteError

EVIDENCE_DIR = "evidence"  # under AppConfig.shared_root() (the data dir on one node)
HASH_PATTERN = re.compile(r"^[0-9a-f]{64}$")
WRITE_CHUNK_BYTES = 1 << 20  # written (and a disk-full error met) a chunk at a time
READ_CHUNK_BYTES = 1 << 20
UNOWNED_DIR = "evidence-unowned"  # beside the store: files no item owned at start
# Beside the store: a stored file found altered when the same bytes were stored again.
ALTERED_DIR = "evidence-altered"
TEMP_PREFIX = ".tmp-"  # half-written files; never listed, removed at start-up
# In a store several nodes write, a file younger than this may be another node's attach
# under way (its bytes written, its row not yet committed): start-up leaves it alone.
SHARED_SETTLE_S = 3600.0
# The service's user alone reads evidence (and no one writes it once stored); directories
# likewise. Files of a node made before this were 0444 in 0755 directories: prepare()
# tightens them.
FILE_MODE = 0o400
DIR_MODE = 0o700


STORED = "item file"
PREFIX_PATTERN = re.compile(r"^[0-9a-f]{2}$")


@dataclass(frozen=True)
class StoreEntry:
    """One name in the store. ``kind``: :data:`STORED` (a regular file named by a SHA-256
    in its own prefix directory), ``temporary file`` (a write under way, or left by a
    crash), ``misplaced`` (named by a SHA-256, in another prefix), ``hidden file``,
    ``file``, ``directory`` or ``symlink``."""

    path: Path
    kind: str


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    size: int
    created: bool  # False if identical bytes were already stored


class EvidenceStore(Protocol):
    def prepare(self) -> None:
        """Get ready at start-up (create, clean up what an interrupted write left)."""
        ...

    def put(self, data: bytes) -> StoredBlob:
        """Store ``data`` durably and atomically under its SHA-256; never overwrite."""
        ...

    def open(self, sha256: str) -> BinaryIO:
        """Read a stored item; KeyError if there is none by that hash."""
        ...

    def size(self, sha256: str) -> int | None: ...

    def hash_of_stored(self, sha256: str) -> str | None:
        """SHA-256 of the bytes actually stored under ``sha256`` (None if missing)."""
        ...

    def hashes(self) -> Iterator[str]: ...

    def settled(self, sha256: str) -> bool:
        """Whether the item was stored long enough ago that no attach (of any node sharing
        the store) can still be about to record it; always True for a store only this
        process writes."""
        ...

    def discard(self, sha256: str) -> None:
        """Remove bytes that no item owns (the caller made sure); no error if absent."""
        ...

    def set_aside(self, sha256: str) -> str:
        """Move bytes that no item owns out of the store; where they went."""
        ...

    def set_aside_names(self) -> list[str]:
        """What :meth:`set_aside` moved out so far."""
        ...

    def strays(self) -> list[StoreEntry]:
        """Whatever is in the store but not an item file (or a write under way)."""
        ...

    def set_aside_stray(self, entry: StoreEntry) -> str:
        """Move a stray out of the store (a symlink: remove the link); what was done."""
        ...


def is_hash(text: str) -> bool:
    return bool(HASH_PATTERN.match(text))


class LocalEvidenceStore:
    """Files ``<root>/<first two hex digits>/<sha256>``, read-only once written.

    A write goes to a temporary file in the target's directory, is fsynced, then linked to
    its final name and the directory fsynced: a crash or a full disk leaves either the
    complete item or nothing under that name (at most a temporary file, removed at the next
    start). ``os.link`` is used as a rename that refuses to replace an existing file.

    ``shared``: other nodes write to the same directory (cluster mode). Start-up then
    removes only temporary files older than :data:`SHARED_SETTLE_S`, and younger items
    are not :meth:`settled`: an attach of another node may be between its file and its row.
    """

    def __init__(self, root: Path, shared: bool = False) -> None:
        self.root = root
        self.shared = shared

    def prepare(self) -> None:
        """Create the root, remove temporary files a crash left behind, and make every
        directory and file readable by the service's user only."""
        self.root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        for entry in self.entries():
            if entry.kind == "temporary file" and self._old(entry.path):
                entry.path.unlink(missing_ok=True)
        # lstat and no descent into links: a symlink planted in the store must never
        # make the node change (as root, say) the mode of whatever it points to.
        for top, dirs, files in os.walk(self.root, followlinks=False):
            for name in (".", *dirs, *files):
                path = Path(top, name)
                mode = path.lstat().st_mode
                if stat.S_ISLNK(mode):
                    continue
                wanted = DIR_MODE if stat.S_ISDIR(mode) else FILE_MODE
                if mode & 0o777 != wanted:
                    path.chmod(wanted)

    def _path(self, sha256: str) -> Path:
        if not is_hash(sha256):
            raise KeyError(sha256)
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes) -> StoredBlob:
        digest = hashlib.sha256(data).hexdigest()
        final = self._path(digest)
        if final.exists() or final.is_symlink():
            # The same bytes are already stored, as far as the name says. A new item must
            # not point at a file that was altered since (its old item's verify shows that);
            # the altered file is kept aside for whoever investigates, and the genuine
            # bytes are stored again.
            if self.hash_of_stored(digest) == digest:
                return StoredBlob(digest, len(data), created=False)
            self._set_aside_altered(final, digest)
        directory = final.parent
        try:
            directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            temp = directory / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
            try:
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
                with os.fdopen(fd, "wb") as handle:
                    self._write(handle, data)
                    handle.flush()
                    os.fsync(handle.fileno())
                try:
                    os.link(temp, final)
                    created = True
                except FileExistsError:
                    created = False  # the same bytes, stored by a concurrent request
            finally:
                temp.unlink(missing_ok=True)
            fsync_dir(directory)
        except OSError as exc:
            disk_full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            reason = "the disk is full" if disk_full else (exc.strerror or str(exc))
            raise EvidenceWriteError(reason, disk_full=disk_full) from exc
        return StoredBlob(digest, len(data), created)

    def _set_aside_altered(self, path: Path, digest: str) -> None:
        try:
            altered = self.root.parent / ALTERED_DIR
            altered.mkdir(mode=DIR_MODE, exist_ok=True)
            os.replace(path, altered / f"{digest}.{secrets.token_hex(4)}")
        except OSError as exc:
            raise EvidenceWriteError(exc.strerror or str(exc), disk_full=False) from exc

    def _write(self, handle: BinaryIO, data: bytes) -> None:
        view = memoryview(data)
        for start in range(0, len(view), WRITE_CHUNK_BYTES):
            handle.write(view[start : start + WRITE_CHUNK_BYTES])

    def open(self, sha256: str) -> BinaryIO:
        try:
            # O_NOFOLLOW: a symlink under an item's name is not its bytes (ELOOP).
            fd = os.open(self._path(sha256), os.O_RDONLY | os.O_NOFOLLOW)
        except (FileNotFoundError, OSError) as exc:
            if isinstance(exc, FileNotFoundError) or exc.errno == errno.ELOOP:
                raise KeyError(sha256) from None
            raise
        return os.fdopen(fd, "rb")

    def size(self, sha256: str) -> int | None:
        try:
            return self._path(sha256).stat().st_size
        except (KeyError, FileNotFoundError):
            return None

    def hash_of_stored(self, sha256: str) -> str | None:
        try:
            handle = self.open(sha256)
        except KeyError:
            return None
        digest = hashlib.sha256()
        with handle:
            while chunk := handle.read(READ_CHUNK_BYTES):
                digest.update(chunk)
        return digest.hexdigest()

    def _old(self, path: Path) -> bool:
        if not self.shared:
            return True
        try:
            return time.time() - path.lstat().st_mtime > SHARED_SETTLE_S
        except FileNotFoundError:
            return False  # its writer finished (or removed it) meanwhile

    def settled(self, sha256: str) -> bool:
        return self._old(self._path(sha256))

    def hashes(self) -> Iterator[str]:
        for entry in self.entries():
            if entry.kind == STORED:
                yield entry.path.name

    def entries(self) -> list[StoreEntry]:
        """Everything in the store, each with its kind (:data:`STORED` for an item file;
        see :class:`StoreEntry`). Links are listed, never followed."""
        found: list[StoreEntry] = []
        if not self.root.is_dir():
            return found
        for top in _scan(self.root):
            if top.is_symlink():
                found.append(StoreEntry(Path(top.path), "symlink"))
            elif top.is_dir() and PREFIX_PATTERN.match(top.name):
                found += [_classify(entry, top.name) for entry in _scan(Path(top.path))]
            elif top.is_dir():
                found.append(StoreEntry(Path(top.path), "directory"))
            else:
                found.append(StoreEntry(Path(top.path), _file_kind(top.name)))
        return found

    def strays(self) -> list[StoreEntry]:
        """What the store holds that is not an item file or a write under way."""
        return [e for e in self.entries() if e.kind not in (STORED, "temporary file")]

    def set_aside_stray(self, entry: StoreEntry) -> str:
        """Move a stray file or directory out of the store, or remove a stray symlink
        (the link only: its target is never touched); what was done."""
        if entry.kind == "symlink":
            os.unlink(entry.path)  # unlink never follows the link
            fsync_dir(entry.path.parent)
            return f"removed the link (to {_link_target(entry.path)}; its target untouched)"
        self.unowned_root.mkdir(mode=DIR_MODE, exist_ok=True)
        relative = entry.path.relative_to(self.root)
        name = "stray-" + "_".join(relative.parts)
        target = self.unowned_root / name
        while target.exists() or target.is_symlink():
            target = self.unowned_root / f"{name}-{secrets.token_hex(4)}"
        os.replace(entry.path, target)
        fsync_dir(entry.path.parent)
        return f"moved to {target}"

    def discard(self, sha256: str) -> None:
        path = self._path(sha256)
        path.unlink(missing_ok=True)
        fsync_dir(path.parent)

    @property
    def unowned_root(self) -> Path:
        return self.root.parent / UNOWNED_DIR

    def set_aside(self, sha256: str) -> str:
        # Moved, not deleted: a database restored from an older backup leaves newer
        # evidence unowned too, and that is for a person to judge.
        self.unowned_root.mkdir(mode=DIR_MODE, exist_ok=True)
        target = self.unowned_root / sha256
        os.replace(self._path(sha256), target)
        fsync_dir(self._path(sha256).parent)
        return str(target)

    def set_aside_names(self) -> list[str]:
        if not self.unowned_root.is_dir():
            return []
        return sorted(str(p) for p in self.unowned_root.iterdir())


def _scan(directory: Path) -> list[os.DirEntry[str]]:
    with os.scandir(directory) as entries:
        return sorted(entries, key=lambda e: e.name)


def _classify(entry: os.DirEntry[str], prefix: str) -> StoreEntry:
    path = Path(entry.path)
    if entry.is_symlink():
        return StoreEntry(path, "symlink")
    if entry.is_dir(follow_symlinks=False):
        return StoreEntry(path, "directory")
    if not entry.is_file(follow_symlinks=False):
        return StoreEntry(path, "file")  # a FIFO, socket or device: still not an item
    if entry.name.startswith(TEMP_PREFIX):
        return StoreEntry(path, "temporary file")
    if is_hash(entry.name):
        return StoreEntry(path, STORED if entry.name[:2] == prefix else "misplaced")
    return StoreEntry(path, _file_kind(entry.name))


def _file_kind(name: str) -> str:
    return "hidden file" if name.startswith(".") else "file"


def _link_target(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def fsync_dir(directory: Path) -> None:
    # The new name is durable only once its directory entry is on disk.
    fd = os.open(directory, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # some file systems refuse fsync on directories
            os.fsync(fd)
    finally:
        os.close(fd)
