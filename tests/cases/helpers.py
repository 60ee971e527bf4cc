"""Small builders shared by the case tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from surveillance.cases.footage import Footage, ItemKind
from surveillance.cases.records import ExportView
from surveillance.cases.store import CaseStores


def footage(data: bytes, camera: str = "cam01", kind: ItemKind = ItemKind.SNAPSHOT) -> Footage:
    """Footage facts around given bytes, as a footage source would report them."""
    return Footage(
        kind=kind,
        data=data,
        media_type="image/jpeg" if kind is ItemKind.SNAPSHOT else "video/mp4",
        camera_id=camera,
        platform_id="town",
        captured_at=datetime.now(UTC),
        stream_time_s=None,
        codec="jpeg" if kind is ItemKind.SNAPSHOT else "h264",
        width=640,
        height=360,
        duration_s=None if kind is ItemKind.SNAPSHOT else 2.0,
        frames=1 if kind is ItemKind.SNAPSHOT else 50,
    )


def export_view(stores: CaseStores, number: str, actor: str, detail: dict[str, Any]) -> ExportView:
    """Prepare an export and log it at once, as the case service does around writing a
    bundle (the tests write theirs from the view afterwards)."""
    view = stores.prepare_export(number, actor, detail)
    assert stores.commit_export(number, view), "the chain moved between two calls of one test"
    return view
