"""What the custody chain binds of a case's rows, and the check that holds the rows to it.

The chain's hashes protect its entries; they protect a row of ``evidence_items`` or the
case's ``state`` only if an entry records them. So an attach entry records the whole item
record (every fact of the capture, where and when and by whom it was attached), in the
bundle manifest's JSON form, and a state entry records the state it moved to. The same
check then runs on the database (``surveillance verify``) and on an exported bundle
(``verify-bundle``): every item against its attach entry, every attach entry against its
item, and the case's state against its last state entry. An item row changed, deleted,
added or moved to another case, or a state changed by hand, shows as a named problem.

Attach entries come in two shapes, told apart by the detail's ``v``:

- version 1 (no ``v``; written before item records were bound): ``sha256``, ``size``,
  ``kind`` and ``camera`` only. Those four are checked; the other facts of such an item
  were never bound and cannot be (the chain is append-only), and the report counts them.
- version 2: the same four (the custody page shows them) plus ``item``, the whole record.

Plain data only: nothing here reads a database or a zip.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from surveillance.cases import custody
from surveillance.cases.records import ItemRecord

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

ATTACH_DETAIL_VERSION = 2
INITIAL_STATE = "reported"  # every case starts here; its create entry records no state

# Manifest names where they differ from the record's (None: not in the manifest); the
# bundle's format 1 has these, so they are also the names an attach entry binds.
Keys = Mapping[str, str | None]
ITEM_KEYS: Keys = {"case_number": None, "camera_id": "camera", "platform_id": "platform"}
# What a version-1 attach entry recorded: its detail key -> the manifest item's key.
V1_FACTS: Mapping[str, str] = {
    "sha256": "sha256",
    "size": "size",
    "kind": "kind",
    "camera": "camera",
}


def record_json(record: DataclassInstance, keys: Keys) -> dict[str, Any]:
    """The record's fields as manifest JSON: renamed or left out as ``keys`` says, times
    in the custody chain's ISO form (UTC), states by value, tuples as lists."""
    out: dict[str, Any] = {}
    for name, value in asdict(record).items():
        key = keys.get(name, name)
        if key is None:
            continue
        if isinstance(value, datetime):
            value = custody.iso(value.astimezone(UTC))
        elif isinstance(value, Enum):
            value = value.value
        elif isinstance(value, tuple):
            value = list(value)
        out[key] = value
    return out


def item_json(item: ItemRecord) -> dict[str, Any]:
    """An item as the manifest lists it (without its file name) and an attach binds it."""
    return record_json(item, ITEM_KEYS)


def attach_detail(item: ItemRecord) -> dict[str, Any]:
    """The detail of the custody entry that records ``item``'s attach (version 2)."""
    return {
        "v": ATTACH_DETAIL_VERSION,
        "sha256": item.sha256,
        "size": item.size,
        "kind": item.kind,
        "camera": item.camera_id,
        "item": item_json(item),
    }


@dataclass(frozen=True)
class Entry:
    """What the check needs of one custody entry."""

    seq: int
    action: str
    item_id: int | None
    detail: Mapping[str, Any]


@dataclass
class CaseCheck:
    problems: list[str]
    unbound_items: int  # items attached under version 1: only four facts are bound


def check_case(
    number: str, state: str, items: Sequence[Mapping[str, Any]], entries: Sequence[Entry]
) -> CaseCheck:
    """Hold a case's items (manifest form, with ``id``) and state to its custody entries."""
    check = CaseCheck([], 0)
    attaches: dict[int, list[Entry]] = {}
    for entry in entries:
        if entry.action == "attach" and entry.item_id is not None:
            attaches.setdefault(entry.item_id, []).append(entry)
    held = {item["id"]: item for item in items}
    for item_id, found in attaches.items():
        for entry in found[1:]:
            check.problems.append(
                f"case {number} custody entry {entry.seq} (attach): item {item_id} was "
                f"attached already by entry {found[0].seq}"
            )
        if item_id not in held:
            check.problems.append(
                f"case {number} custody entry {found[0].seq} (attach) records item {item_id}, "
                "which the case does not hold (its row was deleted or moved)"
            )
    for item in items:
        label = f"case {number} item {item['id']} ({item.get('kind')} from {item.get('camera')})"
        recorded = attaches.get(item["id"])
        if not recorded:
            check.problems.append(
                f"{label}: no custody entry records its attach (its row was added or moved)"
            )
            continue
        entry = recorded[0]
        try:
            bound, legacy = _bound_facts(entry.detail)
        except (KeyError, TypeError, ValueError) as exc:
            check.problems.append(f"{label}: custody entry {entry.seq} is malformed: {exc!r}")
            continue
        check.unbound_items += legacy
        for key, value in bound.items():
            if item.get(key) != value:
                check.problems.append(
                    f"{label}: {key} is {item.get(key)!r} in its record but "
                    f"{value!r} in custody entry {entry.seq} (attach) (altered)"
                )
    check.problems += _state_problems(number, state, entries)
    return check


def _bound_facts(detail: Mapping[str, Any]) -> tuple[Mapping[str, Any], int]:
    """(the facts an attach entry binds, by manifest key; 1 if it is of version 1)."""
    if detail.get("v") == ATTACH_DETAIL_VERSION:
        facts = detail["item"]
        if not isinstance(facts, Mapping):
            raise ValueError("an attach entry's item is not an object")
        return facts, 0
    return {V1_FACTS[k]: detail[k] for k in V1_FACTS if k in detail}, 1


def _state_problems(number: str, state: str, entries: Sequence[Entry]) -> list[str]:
    last = next((e for e in reversed(entries) if e.action == "state"), None)
    recorded = INITIAL_STATE if last is None else str(last.detail.get("to"))
    if state == recorded:
        return []
    source = "its create entry" if last is None else f"its last state entry ({last.seq})"
    return [f"case {number}: state is {state!r}, but {source} leaves it {recorded!r} (altered)"]
