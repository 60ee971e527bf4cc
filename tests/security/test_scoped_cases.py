"""What a user limited to one platform sees of a case that also holds another platform's
evidence, and what their edits leave alone."""

from __future__ import annotations

import pytest

from tests.security.conftest import OTHER_CAMERA, OWN_CAMERA, SecureNode

pytestmark = pytest.mark.rtsp


def test_scoped_handler_sees_and_edits_only_their_platform(secure: SecureNode) -> None:
    admin, scoped = secure.headers["admin"], secure.headers["scoped-handler"]
    number = secure.mixed_case
    linked = secure.client.patch(
        f"/api/cases/{number}", json={"cameras": [OWN_CAMERA, OTHER_CAMERA]}, headers=admin
    )
    assert linked.status_code == 200
    seen = secure.client.get(f"/api/cases/{number}", headers=scoped).json()
    assert seen["cameras"] == [OWN_CAMERA]
    assert OTHER_CAMERA not in str(seen)
    items = secure.client.get(f"/api/cases/{number}/items", headers=scoped).json()
    assert [i["camera"] for i in items] == [OWN_CAMERA]
    custody = secure.client.get(f"/api/cases/{number}/custody", headers=scoped).json()
    all_custody = secure.client.get(f"/api/cases/{number}/custody", headers=admin).json()
    assert 0 < len(custody) < len(all_custody)
    # Unlinking "all" cameras the scoped user sees keeps the one they cannot see.
    edited = secure.client.patch(f"/api/cases/{number}", json={"cameras": []}, headers=scoped)
    assert edited.status_code == 200
    after = secure.client.get(f"/api/cases/{number}", headers=admin).json()
    assert after["cameras"] == [OTHER_CAMERA]
    # Edit entries record the case's cameras (custody binds them): the hidden one is left out.
    custody = secure.client.get(f"/api/cases/{number}/custody", headers=scoped).json()
    all_custody = secure.client.get(f"/api/cases/{number}/custody", headers=admin).json()
    assert custody[-1]["action"] == "edit" and custody[-1]["detail"]["cameras"] == []
    assert all_custody[-1]["detail"]["cameras"] == [OTHER_CAMERA]
    assert secure.client.get(f"/api/cases/{number}/export.zip", headers=scoped).status_code == 403
    assert secure.client.get(f"/api/cases/{number}/export.zip", headers=admin).status_code == 200
