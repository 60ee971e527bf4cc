"""The node's Ed25519 key: signs exported case bundles.

Created on first use in the data directory, readable by the service's user only (0600),
written atomically (a full disk leaves no key file rather than an empty one).
Its fingerprint, ``sha256:`` and the hex SHA-256 of the raw public key, is what a person
compares between a bundle's verification report and the node (API ``/api/node/key``).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from surveillance.cases.errors import NodeKeyBroken, NodeKeyWriteError
from surveillance.cases.storage import fsync_dir

KEY_FILE = "node-key.pem"
KEY_MODE = 0o600
TEMP_PREFIX = ".node-key.tmp-"  # also for the other small files beside it


def fingerprint(public_raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(public_raw).hexdigest()


def public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class NodeKey:
    private: Ed25519PrivateKey

    @property
    def public_raw(self) -> bytes:
        return public_raw(self.private.public_key())

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_raw)

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)

    @classmethod
    def load_or_create(cls, data_dir: Path) -> NodeKey:
        """The node's key, created if there is no file. Raises :class:`NodeKeyBroken` for a
        file that holds no key (an empty one included, see :func:`read_key`),
        :class:`NodeKeyWriteError` (507 if the disk is full) if it cannot be made."""
        path = data_dir / KEY_FILE
        with _key_lock(data_dir):
            try:
                return cls(read_key(path))
            except FileNotFoundError:
                return cls(_create(path))


def read_key(path: Path) -> Ed25519PrivateKey:
    """The private key in ``path``. FileNotFoundError if there is none, :class:`NodeKeyBroken`
    if it cannot be read or holds no key.

    A file that holds no key is never replaced: it may be a key that signed entries and
    bundles (damaged, truncated or swapped), and a new key would make every genuine
    signature look forged and orphan every fingerprint given out. That holds for an empty
    file too: keys are written atomically, so an empty one is a key that was emptied later
    (or the rare leftover of a node from before atomic writes, which an operator who knows it
    never signed may simply delete).
    """
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise NodeKeyBroken(path, exc.strerror or str(exc)) from exc
    if not pem:
        raise NodeKeyBroken(path, "it is empty")
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise NodeKeyBroken(path, "it holds no readable PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise NodeKeyBroken(path, "it holds a private key, but not an Ed25519 one")
    return key


def _create(path: Path) -> Ed25519PrivateKey:
    """Write a new key atomically (:func:`write_atomically`): a full disk or a crash leaves
    the old state (no file, or the empty one), never a partial key."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        write_atomically(path, pem, KEY_MODE)
    except OSError as exc:
        raise NodeKeyWriteError(path, exc) from exc
    return key


def write_atomically(path: Path, data: bytes, mode: int) -> None:
    """A temporary file in ``path``'s directory (``mode`` from its creation), fsynced,
    renamed over ``path``, the directory fsynced; on any error the temporary file goes."""
    temp = path.with_name(f"{TEMP_PREFIX}{secrets.token_hex(8)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            _write_all(handle, data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def _write_all(handle: BinaryIO, pem: bytes) -> None:
    handle.write(pem)


@contextmanager
def _key_lock(data_dir: Path) -> Iterator[None]:
    """One process at a time decides whether to create the key: two nodes starting at
    once on one data directory must not each write (and sign with) a different key."""
    # The lock is on the directory itself: a lock file would be one more file to leave.
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(data_dir, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise NodeKeyWriteError(data_dir, exc) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


@dataclass(frozen=True)
class KeyStatus:
    """What ``surveillance verify`` says of the key file (it never creates one)."""

    public_raw: bytes | None
    problem: str | None = None
    note: str | None = None


def key_status(data_dir: Path) -> KeyStatus:
    path = data_dir / KEY_FILE
    try:
        key = read_key(path)
    except FileNotFoundError:
        return KeyStatus(None, note=f"{path}: no signing key yet (made at the first case)")
    except NodeKeyBroken as exc:
        return KeyStatus(None, problem=str(exc))
    return KeyStatus(public_raw(key.public_key()))


def verify_signature(public: bytes, signature: bytes, data: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, data)
    except Exception:  # InvalidSignature, or a malformed key or signature
        return False
    return True
