"""Reference pictures on both databases: one per camera, replaced whole, removed once."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from surveillance.events.references import Reference, ReferenceStore


def _reference(camera_id: str, shade: int, user: str, at: float) -> Reference:
    return Reference(camera_id, bytes([shade]) * 16 * 9, 16, 9, b"\xff\xd8jpeg", user, at)


def test_a_reference_is_set_replaced_and_removed(engine: Engine) -> None:
    store = ReferenceStore(engine)
    assert store.get("cam01") is None and store.all() == []
    store.put(_reference("cam01", 10, "op-a", 100.0))
    store.put(_reference("cam02", 20, "op-a", 101.0))
    store.put(_reference("cam01", 30, "op-b", 102.0))  # the camera was re-aimed
    again = store.get("cam01")
    assert again == _reference("cam01", 30, "op-b", 102.0)
    assert sorted(r.camera_id for r in store.all()) == ["cam01", "cam02"]
    assert store.remove("cam01") is True
    assert store.remove("cam01") is False
    assert store.get("cam01") is None and store.get("cam02") is not None
    with pytest.raises(ValueError, match="width \\* height"):
        Reference("cam03", b"\x00" * 10, 16, 9, b"", "op-a", 0.0)
