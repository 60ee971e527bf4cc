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

The case's own facts are bound the same way (:func:`check_case_facts`). A create entry
of version 2 records them all (:data:`CASE_FACTS`), an ``edit`` entry records them all as
they are after the edit, a state entry the assignee it sets, an attach the camera it adds;
a ``comment`` entry records the comment's actor, time and the SHA-256 of its text. The
reporter and creation time are checked for every case (the create entry's actor and
time); cases created before version 2 are otherwise bound only partly, and the report
says which. Other timeline entries (created, state, evidence, edit) only restate entries
of the chain and are not checked, nor is ``updated_at``.

Plain data only: nothing here reads a database or a zip.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from surveillance.cases import custody
from surveillance.cases.records import CaseRecord, ItemRecord

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

ATTACH_DETAIL_VERSION = 2
CASE_DETAIL_VERSION = 2  # create and edit entries that record every case fact
INITIAL_STATE = "reported"  # every case starts here; its create entry records no state

# Manifest names where they differ from the record's (None: not in the manifest); the
# bundle's format 1 has these, so they are also the names an attach entry binds.
Keys = Mapping[str, str | None]
ITEM_KEYS: Keys = {"case_number": None, "camera_id": "camera", "platform_id": "platform"}
# The manifest's case: no id; its chain head is at the manifest's top level.
CASE_KEYS: Keys = {"id": None, "custody_seq": None, "custody_head": None}
TIMELINE_KEYS: Keys = {"id": None, "item_id": "item"}
# The case's facts a create or edit entry binds (manifest names); ``state`` has its own
# entries, ``updated_at`` is not bound (every view-only change would need an entry).
CASE_FACTS = (
    "title",
    "description",
    "place",
    "reporter",
    "assignee",
    "created_at",
    "tags",
    "cameras",
)
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


def case_facts(case: CaseRecord) -> dict[str, Any]:
    """The facts a create or edit entry binds, in the manifest's form."""
    facts = record_json(case, CASE_KEYS)
    return {key: facts[key] for key in CASE_FACTS}


def create_detail(case: CaseRecord) -> dict[str, Any]:
    return {"v": CASE_DETAIL_VERSION} | case_facts(case)


def edit_detail(case: CaseRecord, changed: Sequence[str]) -> dict[str, Any]:
    """An edit entry: what changed, and every fact as it is after the edit."""
    return {"v": CASE_DETAIL_VERSION, "changed": list(changed)} | case_facts(case)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def comment_detail(text: str) -> dict[str, Any]:
    """A comment entry: its actor and time are the entry's; its text by SHA-256 (the
    custody page need not repeat the comment, and a hash binds it just the same)."""
    return {"v": CASE_DETAIL_VERSION, "text_sha256": text_hash(text)}


@dataclass(frozen=True)
class Entry:
    """What the check needs of one custody entry; ``at`` in the chain's ISO form."""

    seq: int
    action: str
    item_id: int | None
    detail: Mapping[str, Any]
    actor: str = ""
    at: str = ""


@dataclass
class CaseCheck:
    problems: list[str]
    unbound_items: int  # items attached under version 1: only four facts are bound
    partly_bound: list[str] = field(default_factory=list)  # what is not bound, and why


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


def check_case_facts(
    number: str,
    case: Mapping[str, Any],
    timeline: Sequence[Mapping[str, Any]],
    entries: Sequence[Entry],
) -> CaseCheck:
    """Hold a case's row (manifest form) and its comments (its timeline, manifest form, in
    order) to the entries that set them."""
    check = CaseCheck([], 0)
    create = next((e for e in entries if e.action == "create"), None)
    if create is None:
        check.problems.append(f"case {number}: no custody entry records its creation")
        return check
    # Every version: the create entry's actor is the reporter, its time the creation's.
    for key, value in (("reporter", create.actor), ("created_at", create.at)):
        if case.get(key) != value:
            check.problems.append(
                f"case {number}: {key} is {case.get(key)!r} in its row but {value!r} in "
                f"custody entry {create.seq} (create) (altered)"
            )
    expected: dict[str, Any] = {}
    source: dict[str, Entry] = {}
    full = create.detail.get("v") == CASE_DETAIL_VERSION
    for entry in entries:
        if entry.action in ("create", "edit") and entry.detail.get("v") == CASE_DETAIL_VERSION:
            full = True
            for key in CASE_FACTS:
                expected[key] = entry.detail.get(key)
                source[key] = entry
        elif entry.action == "state" and "assignee" in entry.detail:
            expected["assignee"], source["assignee"] = entry.detail["assignee"], entry
        elif entry.action == "attach" and "cameras" in expected:
            camera = entry.detail.get("camera")
            if camera not in expected["cameras"]:
                expected["cameras"] = sorted([*expected["cameras"], camera])
                source["cameras"] = entry
    if full:
        for key in CASE_FACTS:
            if key in ("reporter", "created_at") or case.get(key) == expected[key]:
                continue
            entry = source[key]
            check.problems.append(
                f"case {number}: {key} is {case.get(key)!r} in its row but "
                f"{expected[key]!r} in custody entry {entry.seq} ({entry.action}) (altered)"
            )
    else:
        check.partly_bound.append(
            f"case {number} is bound only partly: created before its facts were bound, "
            "only its reporter and creation time are checked until its next edit"
        )
    born_bound = create.detail.get("v") == CASE_DETAIL_VERSION  # every comment has an entry
    check.problems += _comment_problems(number, timeline, entries, born_bound, check)
    return check


def _comment_problems(
    number: str,
    timeline: Sequence[Mapping[str, Any]],
    entries: Sequence[Entry],
    full: bool,
    check: CaseCheck,
) -> list[str]:
    """Comment entries pair, in order, with the case's newest comments: every one if the
    case was created with its facts bound; otherwise the older comments predate binding."""
    bound = [e for e in entries if e.action == "comment"]
    comments = [t for t in timeline if t.get("kind") == "comment"]
    if len(bound) > len(comments) or (full and len(bound) != len(comments)):
        return [
            f"case {number}: {len(comments)} comment(s) on its timeline, but its custody "
            f"entries record {len(bound)} (comments deleted or added)"
        ]
    older = len(comments) - len(bound)
    if older:
        check.partly_bound.append(
            f"case {number}: its first {older} comment(s) predate binding comments into "
            "the custody chain and are not checked"
        )
    problems = []
    for comment, entry in zip(comments[older:], bound, strict=True):
        recorded = (entry.actor, entry.at, entry.detail.get("text_sha256"))
        held = (comment.get("actor"), comment.get("at"), text_hash(str(comment.get("text"))))
        if recorded != held:
            problems.append(
                f"case {number}: the comment of {comment.get('at')} by "
                f"{comment.get('actor')!r} differs from custody entry {entry.seq} (comment) "
                "in its author, time or text (altered)"
            )
    return problems
