"""Zones over the API: saved, listed with armed_now, changed and removed (audited); every
bad outline or schedule a 422 naming it; scope and roles as the rules say.

A node of its own with two cameras on two platforms that are never reached (no simulator:
nothing here needs a picture; every zone but one is saved disabled so nothing decodes).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from surveillance.api.app import create_app
from surveillance.api.node import Node
from surveillance.auth.audit import AuditQuery
from surveillance.auth.roles import Role
from surveillance.config.models import AppConfig
from tests.auth_helpers import bearer

SQUARE = [[0.55, 0.45], [0.85, 0.45], [0.85, 0.85], [0.55, 0.85]]


@pytest.fixture
def node_client(tmp_path: Path) -> Iterator[tuple[Node, TestClient]]:
    camera = {"mode": "on-demand", "url": "rtsp://127.0.0.1:9/never"}
    config = AppConfig.model_validate(
        {
            "server": {"data_dir": str(tmp_path / "data")},
            "platforms": [{"id": "town", "name": "Town"}, {"id": "police", "name": "Police"}],
            "cameras": [
                {"id": "gate", "name": "Gate", "platform": "town", **camera},
                {"id": "yard", "name": "Yard", "platform": "police", **camera},
            ],
        }
    )
    app = create_app(config)
    with TestClient(app, base_url="http://localhost") as client:
        yield app.state.node, client


def zone(name: str = "slope", **changes: Any) -> dict[str, Any]:
    return {"name": name, "points": SQUARE, "enabled": False, **changes}


def test_save_list_change_and_remove_a_zone(node_client: tuple[Node, TestClient]) -> None:
    node, client = node_client
    operator = bearer(node, "op", Role.OPERATOR)
    later = datetime.now() + timedelta(hours=2)
    window = {"from": later.strftime("%H:00"), "to": (later + timedelta(hours=1)).strftime("%H:00")}
    body = zone(
        "school gate", tag="school-gate", sensitivity=70, enabled=True,
        schedule={"windows": [window], "months": [], "dates": {"from": "11-15", "to": "03-31"}},
    )  # fmt: skip
    created = client.post("/api/cameras/gate/zones", json=body, headers=operator)
    assert created.status_code == 201, created.text
    saved = created.json()
    assert saved["name"] == "school gate" and saved["tag"] == "school-gate"
    assert saved["points"] == SQUARE and saved["sensitivity"] == 70 and saved["created_by"] == "op"
    assert saved["schedule"]["windows"] == [window]  # "from"/"to", as sent
    assert saved["schedule"]["dates"] == {"from": "11-15", "to": "03-31"}
    assert saved["armed_now"] is False  # the window starts in two hours at the earliest
    assert saved["next_change"] is not None
    listed = client.get("/api/cameras/gate/zones", headers=operator).json()
    assert [z["id"] for z in listed] == [saved["id"]]
    assert client.get("/api/cameras/yard/zones", headers=bearer(node)).json() == []

    always = client.put(
        f"/api/cameras/gate/zones/{saved['id']}", json=zone("school gate", enabled=True),
        headers=operator,
    )  # fmt: skip
    assert always.status_code == 200, always.text
    assert always.json()["armed_now"] is True and always.json()["next_change"] is None
    # A zone is reached through its own camera only.
    assert (
        client.put(
            f"/api/cameras/yard/zones/{saved['id']}", json=zone(), headers=bearer(node)
        ).status_code
        == 404
    )
    assert (
        client.delete(f"/api/cameras/gate/zones/{saved['id']}", headers=operator).status_code == 204
    )
    assert client.get("/api/cameras/gate/zones", headers=operator).json() == []
    assert (
        client.delete(f"/api/cameras/gate/zones/{saved['id']}", headers=operator).status_code == 404
    )
    actions = [
        (e.action, e.detail.get("zone"))
        for e in node.audit.query(AuditQuery(user="op", camera_id="gate"))
    ]
    assert actions == [("zone.delete", saved["id"]), ("zone.save", saved["id"]),
                       ("zone.save", saved["id"])]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"points": SQUARE[:2]}, "at least 3 points"),
        ({"points": [[0.5, 0.5]] * 65}, "at most 64 points"),
        ({"points": [[0.1, 0.1], [1.5, 0.1], [0.5, 0.5]]}, "points[1] is outside the picture"),
        (
            {"points": [[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]]},
            "edge points[0]-points[1] and edge points[2]-points[3]",
        ),
        ({"points": [[0.1, 0.1], [0.9, 0.1], [0.5, 0.1002]]}, "no area"),
        ({"sensitivity": 0}, "sensitivity"),
        ({"sensitivity": 101}, "sensitivity"),
        ({"schedule": {"windows": [{"from": "19:00", "to": "24:00"}]}}, "HH:MM"),
        ({"schedule": {"dates": {"from": "02-30", "to": "03-01"}}}, "no such day"),
        ({"name": ""}, "name"),
        # What the zone editor shows the operator: characters, not "items".
        ({"name": "x" * 81}, "String should have at most 80 characters"),
        ({"name": " \u202egnp.exe"}, "U+202E (RIGHT-TO-LEFT OVERRIDE)"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_zones_are_refused_naming_the_problem(
    node_client: tuple[Node, TestClient], change: dict[str, Any], named: str
) -> None:
    node, client = node_client
    answer = client.post("/api/cameras/gate/zones", json=zone(**change), headers=bearer(node))
    assert answer.status_code == 422, answer.text
    assert named in answer.text
    assert client.get("/api/cameras/gate/zones", headers=bearer(node)).json() == []


def test_a_duplicate_name_is_a_422_on_create_and_on_change(
    node_client: tuple[Node, TestClient],
) -> None:
    node, client = node_client
    admin = bearer(node)
    first = client.post("/api/cameras/gate/zones", json=zone("a"), headers=admin).json()
    second = client.post("/api/cameras/gate/zones", json=zone("b"), headers=admin).json()
    again = client.post("/api/cameras/gate/zones", json=zone("a"), headers=admin)
    assert again.status_code == 422 and "already has a zone called 'a'" in again.text
    renamed = client.put(f"/api/cameras/gate/zones/{second['id']}", json=zone("a"), headers=admin)
    assert renamed.status_code == 422 and "already has a zone called 'a'" in renamed.text
    # The same name on another camera is another zone.
    assert client.post("/api/cameras/yard/zones", json=zone("a"), headers=admin).status_code == 201
    names = [z["name"] for z in client.get("/api/cameras/gate/zones", headers=admin).json()]
    assert names == ["a", "b"] and first["id"] != second["id"]


def test_scope_and_roles(node_client: tuple[Node, TestClient]) -> None:
    node, client = node_client
    town_operator = bearer(node, "town-op", Role.OPERATOR, platforms=["town"])
    viewer = bearer(node, "viewer", Role.VIEWER)
    handler = bearer(node, "handler", Role.HANDLER)
    admin = bearer(node)
    yard = client.post("/api/cameras/yard/zones", json=zone(), headers=admin).json()
    # Another platform's camera does not exist for a scoped user, zones and all.
    assert client.get("/api/cameras/yard/zones", headers=town_operator).status_code == 404
    assert (
        client.post("/api/cameras/yard/zones", json=zone("x"), headers=town_operator).status_code
        == 404
    )
    assert (
        client.delete(f"/api/cameras/yard/zones/{yard['id']}", headers=town_operator).status_code
        == 404
    )
    assert (
        client.post("/api/cameras/gate/zones", json=zone(), headers=town_operator).status_code
        == 201
    )
    # Everyone may see the zones of cameras they see; only operators and admins draw them.
    assert len(client.get("/api/cameras/yard/zones", headers=viewer).json()) == 1
    for who in (viewer, handler):
        assert (
            client.post("/api/cameras/gate/zones", json=zone("y"), headers=who).status_code == 403
        )
        assert (
            client.delete(f"/api/cameras/yard/zones/{yard['id']}", headers=who).status_code == 403
        )
    assert client.get("/api/cameras/nowhere/zones", headers=admin).status_code == 404
