"""The custody log's hash chain: how an entry is hashed and how a chain is checked.

Each entry's hash covers its content and the hash of the entry before it, so changing,
removing or reordering any entry breaks every link after it. The first entry of a case
links to a genesis value derived from the case number. Plain data only: the same code
checks the database (``surveillance verify``) and an exported bundle, offline.

A chain proves order and integrity against edits that do not rewrite the whole chain;
someone able to rewrite the database could rebuild it, so each entry also carries the
node key's signature of its hash (:mod:`.entry_signatures`): the key is a file outside the
database. Removing the newest entries (and setting the case's head back) leaves a chain
of genuine, signed entries: only an earlier exported bundle (its manifest holds the head
at the time) or the audit log shows that.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

ACTIONS = (
    "create",
    "edit",
    "comment",
    "attach",
    "view",
    "download",
    "export",
    "export_failed",
    "state",
)


def canonical_json(value: Any) -> bytes:
    """One byte form per value: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signed_message(entry_hash: str) -> bytes:
    """What the node's key signs of an entry: its hash, which covers everything else."""
    return f"surveillance-custody-entry:{entry_hash}".encode()


def genesis_hash(case_number: str) -> str:
    return hashlib.sha256(f"surveillance-custody:{case_number}".encode()).hexdigest()


@dataclass(frozen=True)
class Link:
    """One entry as the chain sees it; ``at`` is an ISO 8601 UTC string."""

    case_number: str
    seq: int
    at: str
    actor: str
    action: str
    item_id: int | None
    detail: Mapping[str, Any]
    prev_hash: str

    def content(self) -> dict[str, Any]:
        return {
            "case": self.case_number,
            "seq": self.seq,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "item": self.item_id,
            "detail": dict(self.detail),
            "prev": self.prev_hash,
        }

    def digest(self) -> str:
        return hashlib.sha256(canonical_json(self.content())).hexdigest()


def iso(moment: datetime) -> str:
    """The timestamp form hashed into the chain: UTC, microseconds, always the same."""
    return moment.isoformat(timespec="microseconds")


def check_chain(
    case_number: str, links: Iterable[tuple[Link, str]], head: tuple[int, str] | None = None
) -> list[str]:
    """Problems in a case's chain, given (link, stored hash) in seq order; [] if intact.

    ``head`` is the (seq, hash) the case records as its newest entry, if known: it catches
    entries removed from the end, which leave the rest of the chain intact.
    """
    problems: list[str] = []
    expected_prev = genesis_hash(case_number)
    expected_seq = 1
    last = (0, expected_prev)
    for link, stored in links:
        where = f"case {case_number} custody entry {link.seq} ({link.action})"
        if link.seq != expected_seq:
            problems.append(f"{where}: expected entry {expected_seq} here (entries missing)")
        if link.prev_hash != expected_prev:
            problems.append(f"{where}: does not link to the entry before it (chain broken)")
        if link.digest() != stored:
            problems.append(f"{where}: content does not match its hash (altered)")
        expected_prev = stored
        expected_seq = link.seq + 1
        last = (link.seq, stored)
    if head is not None and head != last:
        problems.append(
            f"case {case_number}: custody log ends at entry {last[0]}, but the case records "
            f"entry {head[0]} as its newest (entries removed or added)"
        )
    return problems
