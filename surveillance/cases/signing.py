"""The node's Ed25519 key: signs exported case bundles.

Created on first use in the data directory, readable by the service's user only (0600).
Its fingerprint, ``sha256:`` and the hex SHA-256 of the raw public key, is what a person
compares between a bundle's verification report and the node (API ``/api/node/key``).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

KEY_FILE = "node-key.pem"
KEY_MODE = 0o600


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
        path = data_dir / KEY_FILE
        try:
            pem = path.read_bytes()
        except FileNotFoundError:
            return cls._create(path)
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 private key")
        return cls(key)

    @classmethod
    def _create(cls, path: Path) -> NodeKey:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        # O_EXCL: two processes starting at once must not each write a different key;
        # the loser reads the winner's. The mode is set at creation, never widened.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_MODE)
        except FileExistsError:
            return cls.load_or_create(path.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        return cls(key)


def verify_signature(public: bytes, signature: bytes, data: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, data)
    except Exception:  # InvalidSignature, or a malformed key or signature
        return False
    return True
