"""Custody entries signed by the node's key, and the check that a chain's signatures hold.

The hash chain alone can be rebuilt by anyone who can write the database. Each entry
written since signatures began also carries the node key's Ed25519 signature of its hash
(:func:`.custody.signed_message`); the key is a file outside the database, so a rebuilt
chain lacks valid signatures. When signing began is recorded in a file beside the key
(:data:`START_FILE`), also outside the database: the case numbers given out by then, and
the moment. The check, on the database and on a bundle:

- every signature present is valid for the node's key;
- an unsigned entry after a signed one in the same chain is a problem;
- every entry of a case created after signing began must be signed, and an unsigned entry
  dated after it is a problem;
- other unsigned entries are older than signing: named in a note, not a problem.

What it cannot catch: removing a chain's newest entries and setting the case's head back
leaves genuine signed entries (an earlier bundle, or the audit log, shows it), and an
unsigned chain backdated to before signing began looks like an old one.

Plain data only: nothing here reads a database or a zip.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from surveillance.cases import custody
from surveillance.cases.signing import verify_signature, write_atomically

START_FILE = "custody-signing.json"  # beside the node key, in the data directory


@dataclass(frozen=True)
class Signed:
    """What the check needs of one entry; ``at`` in the chain's ISO form."""

    seq: int
    action: str
    at: str
    entry_hash: str
    signature: str | None


def load_start(data_dir: Path) -> dict[str, Any] | None:
    """When signing began on this node (``since``, ``last_numbers``), or None if not yet."""
    try:
        start = json.loads((data_dir / START_FILE).read_bytes())
    except FileNotFoundError:
        return None
    if not isinstance(start, dict):
        raise ValueError(f"{data_dir / START_FILE} is not a JSON object")
    return start


def record_start(
    data_dir: Path, now: datetime, last_numbers: Callable[[], Mapping[str, int]]
) -> dict[str, Any]:
    """Record when signing begins, once (the node calls this at start, before any entry):
    the moment and the last case number given out per year until then."""
    found = load_start(data_dir)
    if found is not None:
        return found
    start = {"since": custody.iso(now), "last_numbers": dict(last_numbers())}
    write_atomically(data_dir / START_FILE, custody.canonical_json(start), 0o600)
    os.chmod(data_dir / START_FILE, 0o600)
    return start


def _created_after_start(number: str, start: Mapping[str, Any]) -> bool:
    year, _, serial = number.partition("-")
    started = str(start.get("since", ""))[:4]
    if year != started:
        return year > started
    last = int(start.get("last_numbers", {}).get(year, 0))
    return not serial.isdigit() or int(serial) > last


def check_signatures(
    number: str,
    entries: Sequence[Signed],
    public: bytes | None,
    start: Mapping[str, Any] | None,
    also: Sequence[bytes] = (),
) -> tuple[list[str], list[str]]:
    """(problems, notes) of a case's entry signatures, given the node's public key (None
    if it cannot be read) and when signing began (None if unknown: before it began, or a
    bundle made before entries were signed). ``also``: the other nodes' keys in cluster
    mode (:mod:`.key_ring`); a signature by any of them holds too."""
    problems: list[str] = []
    unsigned: list[Signed] = []
    signed_seen: Signed | None = None
    since = str(start["since"]) if start else None
    new_case = start is not None and _created_after_start(number, start)
    for entry in entries:
        where = f"case {number} custody entry {entry.seq} ({entry.action})"
        if entry.signature is None:
            if signed_seen is not None:
                problems.append(
                    f"{where}: unsigned, after the signed entry {signed_seen.seq} "
                    "(rebuilt or inserted)"
                )
            elif new_case:
                problems.append(
                    f"{where}: unsigned, but the case was created after the node began "
                    f"signing entries ({since}) (rebuilt or forged)"
                )
            elif since is not None and entry.at >= since:
                problems.append(
                    f"{where}: unsigned, but dated after the node began signing entries "
                    f"({since}) (rebuilt or forged)"
                )
            else:
                unsigned.append(entry)
            continue
        signed_seen = entry
        if public is None and not also:
            problems.append(f"{where}: signed, but the node's key cannot be read to check it")
            continue
        try:
            signature = base64.b64decode(entry.signature, validate=True)
        except (binascii.Error, ValueError):
            signature = b""
        message = custody.signed_message(entry.entry_hash)
        keys = [public, *also] if public is not None else list(also)
        if not any(verify_signature(key, signature, message) for key in keys):
            whose = "the node key's" if not also else "any cluster node key's"
            problems.append(
                f"{where}: its signature is not {whose} signature of its hash (rebuilt or forged)"
            )
    notes = []
    if unsigned:
        older = f"older than {since}" if since else "made before entries were signed"
        notes.append(
            f"case {number}: {len(unsigned)} custody entr{'y' if len(unsigned) == 1 else 'ies'} "
            f"unsigned, {older}: those are held by the hash chain alone"
        )
    return problems, notes
