"""``surveillance verify``: every stored item against its hash, every custody chain intact,
every item row and case state held to its chain (:mod:`.binding`), no file in the
evidence store that no item owns (:mod:`.unowned`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from surveillance.cases.storage import EvidenceStore
from surveillance.cases.store import CaseStores


@dataclass
class StoreReport:
    problems: list[str] = field(default_factory=list)
    items: int = 0
    cases: int = 0
    custody_entries: int = 0
    unbound_items: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_store(
    stores: CaseStores,
    evidence: EvidenceStore,
    public: bytes | None = None,
    signing_start: Mapping[str, Any] | None = None,
    also: Sequence[bytes] = (),
) -> StoreReport:
    """``public``: the node key's public half, to check entry signatures with;
    ``signing_start``: when the node began signing entries (:mod:`.entry_signatures`);
    ``also``: the other cluster nodes' keys (:mod:`.key_ring`)."""
    report = StoreReport()
    checked: dict[str, str | None] = {}  # one read per blob, however many items share it
    for item in stores.items.all_items():
        report.items += 1
        label = f"case {item.case_number} item {item.id} ({item.kind} from {item.camera_id})"
        if item.sha256 not in checked:
            checked[item.sha256] = evidence.hash_of_stored(item.sha256)
        actual = checked[item.sha256]
        if actual is None:
            report.problems.append(f"{label}: file {item.sha256} is missing from the store")
        elif actual != item.sha256:
            report.problems.append(
                f"{label}: stored bytes hash to {actual}, recorded {item.sha256} (altered)"
            )
        elif evidence.size(item.sha256) != item.size:
            report.problems.append(f"{label}: size differs from the recorded {item.size} bytes")
    owned = set(checked)
    for sha256 in evidence.hashes():
        if sha256 not in owned:
            report.problems.append(
                f"evidence file {sha256} is owned by no item (left by a refused or "
                "interrupted attach, or its item's row was deleted); the node moves such "
                "files out of the store at its next start"
            )
    for stray in evidence.strays():
        action = (
            "removes the link (never its target)"
            if stray.kind == "symlink"
            else "moves it out of the store"
        )
        report.problems.append(
            f"{stray.path}: {stray.kind} in the evidence store, not a file named by its "
            f"SHA-256 in its own prefix directory; no item owns it; the node {action} at "
            "its next start"
        )
    for path in evidence.set_aside_names():
        report.notes.append(
            f"{path}: set aside at start, owned by no item; inspect it, then delete it"
        )
    cases = stores.check_cases(public, signing_start, also)
    report.cases, report.custody_entries = cases.cases, cases.custody_entries
    report.unbound_items = cases.unbound_items
    report.problems += cases.problems
    report.notes += cases.notes
    return report
