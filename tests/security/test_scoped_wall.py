"""Tag tours and scopes (issue 10 item 10): a tag tour shows every camera carrying its tag,
now and later, so a user limited to some cameras may create, overwrite or delete one only
if every camera carrying the tag is in their scope; its pages show them only theirs."""

from __future__ import annotations

from typing import Any

import pytest

from tests.security.conftest import OTHER_CAMERA, OWN_CAMERA, SecureNode

pytestmark = pytest.mark.rtsp

# "traffic" is carried by the own platform's camera and by the other platform's.
TAG = "traffic"


def tag_tour(name: str) -> dict[str, Any]:
    return {"name": name, "title": name, "tag": TAG, "preset": "2x2"}


def test_a_scoped_operator_may_not_create_change_or_delete_a_tag_tour_beyond_their_scope(
    secure: SecureNode,
) -> None:
    client = secure.client
    scoped = secure.headers["scoped-operator"]
    admin = secure.headers["admin"]
    created = client.put("/api/tours/scoped-tag", json=tag_tour("scoped-tag"), headers=scoped)
    assert created.status_code == 403, created.text
    assert all(t["name"] != "scoped-tag" for t in client.get("/api/tours", headers=admin).json())

    assert client.put("/api/tours/tagged", json=tag_tour("tagged"), headers=admin).is_success
    try:
        pages = client.get("/api/tours/tagged/pages", headers=scoped).json()
        shown = [t["camera"] for page in pages for t in page["tiles"] if t["camera"]]
        assert shown == [OWN_CAMERA]
        everything = client.get("/api/tours/tagged/pages", headers=admin).json()
        assert {t["camera"] for p in everything for t in p["tiles"]} >= {OWN_CAMERA, OTHER_CAMERA}

        own_grid = {"cols": 1, "rows": 1, "tiles": [{"x": 0, "y": 0, "camera": OWN_CAMERA}]}
        fixed = {"name": "tagged", "title": "mine now", "pages": [{"grid": own_grid}]}
        assert client.put("/api/tours/tagged", json=fixed, headers=scoped).status_code == 403
        assert client.delete("/api/tours/tagged", headers=scoped).status_code == 403
        tours = {t["name"]: t for t in client.get("/api/tours", headers=admin).json()}
        assert tours["tagged"]["tag"] == TAG  # unchanged
        # An operator without limits may.
        operator = secure.headers["operator"]
        assert client.put("/api/tours/tagged", json=tag_tour("tagged"), headers=operator).is_success
    finally:
        assert client.delete("/api/tours/tagged", headers=admin).status_code == 204
