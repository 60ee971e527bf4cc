"""The public keys of every node of a cluster, so that any node verifies what any signed.

Each node signs custody entries and bundles with its own key, kept in its own data
directory (:mod:`.signing`); in cluster mode the entries of one case may come from several
nodes. At start each node publishes its public key as ``<shared_dir>/node-keys/<node id>.pub``
(the base64 raw Ed25519 key, one line). A verifier reads them all and accepts a signature
made by any of them; a bundle carries the keys that signed its entries, under the
exporting node's signature.

Only public halves are here: anyone who can write the shared directory can add a key, as
anyone who can write the database can rebuild a chain. What a reader of a report compares
is the fingerprints of the nodes (``GET /api/node/key`` on each), which the report names.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from pathlib import Path

from surveillance.cases.signing import fingerprint, write_atomically

log = logging.getLogger(__name__)

KEYS_DIR = "node-keys"  # under cluster.shared_dir
SUFFIX = ".pub"
PUBLIC_MODE = 0o644  # public halves: every node (and an auditor) reads them
ED25519_PUBLIC_BYTES = 32
# Node ids are config Identifiers; this is the same shape, checked again before a path.
NODE_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def publish(shared_dir: Path, node_id: str, public_raw: bytes) -> Path:
    """Write (or replace) this node's public key in the shared directory; its path."""
    if not NODE_ID.match(node_id):
        raise ValueError(f"node id {node_id!r} cannot name a key file")
    path = shared_dir / KEYS_DIR / f"{node_id}{SUFFIX}"
    text = base64.b64encode(public_raw).decode() + "\n"
    try:
        if path.read_text() == text:
            return path  # unchanged: no write on every start
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    write_atomically(path, text.encode(), PUBLIC_MODE)
    path.chmod(PUBLIC_MODE)
    return path


def read_keys(shared_dir: Path) -> dict[str, bytes]:
    """Every published key by node id; a file that holds no key is logged and left out
    (it cannot make a forged signature pass, only a genuine one fail)."""
    keys: dict[str, bytes] = {}
    directory = shared_dir / KEYS_DIR
    if not directory.is_dir():
        return keys
    for path in sorted(directory.glob(f"*{SUFFIX}")):
        node_id = path.name.removesuffix(SUFFIX)
        try:
            raw = base64.b64decode(path.read_text().strip(), validate=True)
        except (OSError, UnicodeDecodeError, binascii.Error, ValueError) as exc:
            log.warning("node key %s cannot be read: %s", path, exc)
            continue
        if len(raw) != ED25519_PUBLIC_BYTES:
            log.warning("node key %s holds %d bytes, not an Ed25519 key", path, len(raw))
            continue
        keys[node_id] = raw
    return keys


def described(keys: dict[str, bytes]) -> list[dict[str, str]]:
    """The keys as a bundle's manifest lists them: node, fingerprint, public key."""
    return [
        {
            "node": node_id,
            "fingerprint": fingerprint(raw),
            "public_key": base64.b64encode(raw).decode(),
        }
        for node_id, raw in sorted(keys.items())
    ]
