"""What a user limited to some cameras sees of a case: the case itself, but only the
cameras, evidence, timeline and custody entries of cameras in their scope."""

from __future__ import annotations

import dataclasses

from fastapi import HTTPException

from surveillance.api.node import Node
from surveillance.auth.principal import Principal
from surveillance.cases.errors import ItemNotFound
from surveillance.cases.records import CaseDetail, CaseRecord, CustodyRecord, ItemRecord


def camera_seen(node: Node, principal: Principal, camera_id: str, platform_id: str | None) -> bool:
    if not principal.scope.limited:
        return True
    camera = node.catalog.camera(camera_id)
    platform = camera.platform_id if camera is not None else platform_id
    return principal.sees(camera_id, platform or "")


def item_seen(node: Node, principal: Principal, item: ItemRecord) -> bool:
    # The platform recorded with the item counts if the camera left the catalog since.
    return camera_seen(node, principal, item.camera_id, item.platform_id)


def hidden_items(node: Node, principal: Principal, number: str) -> set[int]:
    if not principal.scope.limited:
        return set()
    return {i.id for i in node.cases.items(number) if not item_seen(node, principal, i)}


def scoped_case(node: Node, principal: Principal, case: CaseRecord) -> CaseRecord:
    if not principal.scope.limited:
        return case
    cameras = tuple(c for c in case.cameras if camera_seen(node, principal, c, None))
    return dataclasses.replace(case, cameras=cameras)


def scoped_detail(node: Node, principal: Principal, detail: CaseDetail) -> CaseDetail:
    if not principal.scope.limited:
        return detail
    hidden = hidden_items(node, principal, detail.case.number)
    timeline = tuple(t for t in detail.timeline if t.item_id is None or t.item_id not in hidden)
    return dataclasses.replace(
        detail,
        case=scoped_case(node, principal, detail.case),
        timeline=timeline,
        item_count=detail.item_count - len(hidden),
    )


def scoped_custody(
    node: Node, principal: Principal, number: str, entries: list[CustodyRecord]
) -> list[CustodyRecord]:
    hidden = hidden_items(node, principal, number)
    return [e for e in entries if e.item_id is None or e.item_id not in hidden]


def require_item_seen(node: Node, principal: Principal, item: ItemRecord, ref: str) -> None:
    """404 in the same words as a missing item, so hidden items are not even confirmed."""
    if not item_seen(node, principal, item):
        raise HTTPException(404, str(ItemNotFound(item.case_number, ref)))
