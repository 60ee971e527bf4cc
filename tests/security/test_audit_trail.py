"""The audit log records who looked at what: live views start and stop per camera, snapshots,
evidence views and downloads, exports and changes, with user, camera, client and outcome;
a scoped user sees only their own entries."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from websockets.sync.client import connect as websocket_connect

from tests.security.conftest import OTHER_CAMERA, OWN_CAMERA, SecureNode

pytestmark = pytest.mark.rtsp


def entries(secure: SecureNode, identity: str, **query: Any) -> list[dict[str, Any]]:
    response = secure.client.get("/api/audit", params=query, headers=secure.headers[identity])
    assert response.status_code == 200
    found: list[dict[str, Any]] = response.json()["entries"]
    return found


def test_live_views_snapshots_and_evidence_are_audited(secure: SecureNode) -> None:
    since = time.time()
    operator = secure.headers["scoped-operator"]
    url = secure.service.url.replace("http", "ws", 1) + f"/api/live/mse?camera={OWN_CAMERA}"
    # max_queue=None: the media that follows the first message keeps being read, so the
    # server's close frame is seen at once; with the default queue (16 messages) full
    # of unread media the client stops reading and close() waits out close_timeout (10 s).
    with websocket_connect(url, additional_headers=operator, open_timeout=10, max_queue=None) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "init"
    assert (
        secure.client.get(f"/api/cameras/{OWN_CAMERA}/snapshot.jpg", headers=operator).status_code
        == 200
    )
    # A token of its own: reads of an item are logged once per reader and minute, and other
    # tests in this package may have read the same item with the shared handler token.
    _, secret = secure.node.auth.create_token("handler", "audit trail")
    handler = {"Authorization": f"Bearer {secret}"}
    item_url = f"/api/cases/{secure.own_case}/items/{secure.own_item}/content"
    assert secure.client.get(item_url, headers=handler).status_code == 200
    assert (
        secure.client.get(item_url, params={"download": True}, headers=handler).status_code == 200
    )
    export = secure.client.get(f"/api/cases/{secure.own_case}/export.zip", headers=handler)
    assert export.status_code == 200

    def actions(user: str) -> list[tuple[str, str | None, str]]:
        # The WebSocket's end is recorded when the server notices the close: wait for it.
        deadline = time.monotonic() + 10
        while True:
            found = entries(secure, "admin", user=user, since=since)
            if any(e["action"] == "live.stop" for e in found) or user != "scoped-operator":
                break
            assert time.monotonic() < deadline, found
            time.sleep(0.2)
        return [(e["action"], e["camera_id"], e["outcome"]) for e in reversed(found)]

    # The stream's end may be noticed after the snapshot: compare without order.
    assert sorted(actions("scoped-operator")) == [
        ("live.start", OWN_CAMERA, "ok"),
        ("live.stop", OWN_CAMERA, "ok"),
        ("snapshot", OWN_CAMERA, "ok"),
    ]
    assert actions("handler") == [
        ("evidence.view", OWN_CAMERA, "ok"),
        ("evidence.download", OWN_CAMERA, "ok"),
        ("case.export", None, "ok"),
    ]
    entry = entries(secure, "admin", user="handler", action="case.export", since=since)[0]
    assert entry["client"] == "127.0.0.1"
    assert entry["detail"]["case"] == secure.own_case
    by_camera = entries(secure, "admin", camera=OWN_CAMERA, since=since)
    assert {e["user"] for e in by_camera} == {"scoped-operator", "handler"}


def test_a_scoped_user_sees_only_their_own_entries(secure: SecureNode) -> None:
    secure.client.get(f"/api/cameras/{OTHER_CAMERA}/snapshot.jpg", headers=secure.headers["admin"])
    own = entries(secure, "scoped-operator")
    assert own and {e["user"] for e in own} == {"scoped-operator"}
    assert entries(secure, "scoped-operator", user="admin") == []
    assert entries(secure, "scoped-operator", camera=OTHER_CAMERA) == []
    everyone = {e["user"] for e in entries(secure, "admin", limit=500)}
    assert {"admin", "scoped-operator"} <= everyone


def test_a_denied_request_is_audited(secure: SecureNode) -> None:
    since = time.time()
    refused = secure.client.get("/api/users", headers=secure.headers["viewer"])
    assert refused.status_code == 403
    denied = entries(secure, "admin", user="viewer", action="access.denied", since=since)
    assert denied[0]["outcome"] == "denied"
    assert denied[0]["detail"] == {"path": "/api/users", "missing": ["users.manage"]}
