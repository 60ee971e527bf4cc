"""The ``surveillance verify`` and ``surveillance verify-bundle`` commands.

Both print one line per problem naming what failed, end with a summary line, and exit 1
if anything failed (2 for unusable input), so scripts and people can rely on the code.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy import Engine

from surveillance.cases import key_ring
from surveillance.cases.bundle import verify_bundle
from surveillance.cases.entry_signatures import load_start
from surveillance.cases.signing import key_status
from surveillance.cases.storage import EVIDENCE_DIR, LocalEvidenceStore
from surveillance.cases.store import CaseStores
from surveillance.cases.verify import verify_store
from surveillance.config.models import AppConfig
from surveillance.db import (
    SQLITE_FILE,
    StoreOutdated,
    check_current,
    create_db_engine,
    database_url,
)

# Said on every run: the one change to a chain that its own signatures cannot show.
TRUNCATION_LIMIT = (
    "a case's newest custody entries removed, with its head set back to the entry before "
    "them, leave a chain of genuine signed entries: the database alone cannot show it; "
    "compare with a bundle exported earlier (its manifest holds the head then) or the "
    "audit log's evidence and export entries"
)


def verify_command(
    config: AppConfig, cross_checks: Sequence[Callable[[Engine], list[str]]] = ()
) -> int:
    """Check every stored item against its hash and every custody chain; ``cross_checks``
    (from layers above this one: the audit log) add problems of their own."""
    url = database_url(config)
    sqlite_file = config.server.data_dir / SQLITE_FILE
    if config.database.url is None and not sqlite_file.is_file():
        print(f"FAILED: no case database at {sqlite_file}", file=sys.stderr)
        return 2
    engine = create_db_engine(url)
    try:
        check_current(engine)
        evidence = LocalEvidenceStore(
            config.shared_root() / EVIDENCE_DIR, shared=config.cluster.enabled
        )
        key = key_status(config.server.data_dir)
        start = load_start(config.server.data_dir)
        # In cluster mode entries may be signed by any node: their published keys.
        shared = config.cluster.shared_dir if config.cluster.enabled else None
        published = key_ring.read_keys(shared) if shared else {}
        also = list(published.values())
        report = verify_store(CaseStores(engine), evidence, key.public_raw, start, also)
        if published:
            keys = key_ring.described(published)
            named = ", ".join(f"{k['node']} {k['fingerprint']}" for k in keys)
            report.notes.append(f"entry signatures checked against the cluster's keys: {named}")
        report.problems += [key.problem] if key.problem else []
        for cross_check in cross_checks:
            report.problems += cross_check(engine)
        report.notes += [key.note] if key.note else []
    except StoreOutdated as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    for problem in report.problems:
        print(f"FAILED: {problem}")
    notes = [*report.notes, TRUNCATION_LIMIT]
    summary = (
        f"{report.items} items, {report.cases} cases, {report.custody_entries} custody entries"
    )
    if report.ok:
        print(
            f"OK: {summary}: every item matches its SHA-256 and its attach entry, every "
            "case's state and facts the entries that set them, every custody chain is intact "
            f"and its signed entries carry {'a cluster node' if also else 'the node'} "
            "key's signatures"
        )
        _print_unbound(report.unbound_items)
        _print_notes(notes)
        return 0
    _print_notes(notes)
    print(f"VERIFICATION FAILED: {len(report.problems)} problem(s) in {summary}")
    return 1


def verify_bundle_command(path: Path, expect_fingerprint: str | None) -> int:
    """Check a case bundle offline: signature, media hashes, custody chain."""
    if not path.is_file():
        print(f"FAILED: {path}: no such file", file=sys.stderr)
        return 2
    report = verify_bundle(str(path), expect_fingerprint)
    for problem in report.problems:
        print(f"FAILED: {problem}")
    signer = f"signed by node {report.node_name!r}, key fingerprint {report.fingerprint}"
    if report.ok:
        if report.fingerprint_checked:
            checked = "the expected key"
        else:
            # Any key can sign a bundle intact: only the fingerprint says whose it is.
            checked = (
                "signer NOT checked: no expected fingerprint given, so this shows the "
                "bundle intact, not who signed it; compare the fingerprint with the "
                "node's (GET /api/node/key) or pass --expect-fingerprint"
            )
        print(
            f"OK: case {report.case_number}: {report.items} items and "
            f"{report.custody_entries} custody entries intact; {signer}; {checked}"
        )
        _print_unbound(report.unbound_items)
        _print_notes(report.notes)
        return 0
    _print_notes(report.notes)
    if report.fingerprint:
        print(f"(the bundle claims to be {signer})")
    print(f"VERIFICATION FAILED: {len(report.problems)} problem(s) in {path}")
    return 1


def _print_unbound(count: int) -> None:
    if count:
        print(
            f"Note: {count} item(s) were attached before item records were bound into the "
            "custody chain: only their SHA-256, size, kind and camera are checked against it."
        )


def _print_notes(notes: list[str]) -> None:
    for note in notes:
        print(f"Note: {note}")
