"""Forwarding between two real nodes (api/forward.py): two apps under uvicorn sharing one
real PostgreSQL database, real cameras from the RTSP simulator.

Node B holds cam00, node A holds cam01. Requests for cam00 sent to A are answered by B with
the user's own credentials (B authenticates them against the shared database).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as websocket_connect

from surveillance.api.forward import FORWARDED_HEADER
from surveillance.auth.roles import Role
from surveillance.config.models import AppConfig
from surveillance.simulator import Simulator
from tests.auth_helpers import TEST_PASSWORD, bearer, ensure_user
from tests.cases.conftest import PostgresCluster
from tests.service import ServiceProcess
from tests.waits import wait_until

pytestmark = [pytest.mark.postgresql, pytest.mark.rtsp]

HELD_BY_B = "cam00"
HELD_BY_A = "cam01"
MSE_ONLY = {"webrtc_h264": False, "mse_avc": True, "mse_hevc": False}
TIMEOUT_S = 30


@dataclass
class StandInOwnership:
    """Stands in for services/camera_ownership.py's Ownership (being built at the same
    time): fixed holders, so the test decides who holds which camera."""

    me: str
    holders: dict[str, str]
    urls: dict[str, str]

    def owner(self, camera_id: str) -> str | None:
        return self.holders.get(camera_id)

    def holds(self, camera_id: str) -> bool:
        return self.holders.get(camera_id) == self.me

    def owner_url(self, camera_id: str) -> str | None:
        owner = self.holders.get(camera_id)
        return None if owner in (None, self.me) else self.urls[owner]


@dataclass
class StandInMembership:
    """Stands in for services/cluster_membership.py's Membership: the cluster table."""

    urls: dict[str, str]

    def node_url(self, node_id: str) -> str | None:
        return self.urls.get(node_id)

    def live_nodes(self) -> list[Any]:
        return [SimpleNamespace(id=i, url=u) for i, u in self.urls.items()]


@dataclass
class Pair:
    a: ServiceProcess
    b: ServiceProcess
    admin: dict[str, str]  # bearer headers, valid on both nodes (one database)
    handler: dict[str, str]
    operator: dict[str, str]


def _config(node_id: str, port: int, database: str, simulator: Simulator, root: Path) -> AppConfig:
    return AppConfig.model_validate(
        {
            "server": {"data_dir": str(root / node_id), "port": port},
            "database": {"url": database},
            "cluster": {"enabled": True, "node_id": node_id,
                        "url": f"http://127.0.0.1:{port}", "shared_dir": str(root / "shared")},
            "ingest": {"connect_timeout_s": 5, "ring_seconds": 6},
            "events": {"diagnosis": {"enabled": False}},
            "platforms": [{"id": "town", "name": "Town"}],
            "cameras": [
                {"id": HELD_BY_B, "name": "Held by B", "platform": "town",
                 "url": simulator.url(HELD_BY_B)},
                {"id": HELD_BY_A, "name": "Held by A", "platform": "town",
                 "url": simulator.url(HELD_BY_A)},
            ],
        }
    )  # fmt: skip


@pytest.fixture(scope="module")
def pair(
    postgres: PostgresCluster, simulator: Simulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    root = tmp_path_factory.mktemp("forward")
    database = postgres.new_database()
    a = ServiceProcess(AppConfig())
    b = ServiceProcess(AppConfig())
    a.config = _config("a", a.port, database, simulator, root)
    b.config = _config("b", b.port, database, simulator, root)
    a.start()
    b.start()
    urls = {"a": a.url, "b": b.url}
    holders = {HELD_BY_B: "b", HELD_BY_A: "a"}
    for process, me in ((a, "a"), (b, "b")):
        process.node.ownership = StandInOwnership(me, holders, urls)  # type: ignore[attr-defined]
        process.node.membership = StandInMembership(urls)  # type: ignore[attr-defined]
    try:
        yield Pair(
            a,
            b,
            admin=bearer(a.node),
            handler=bearer(a.node, "handler", Role.HANDLER),
            operator=bearer(a.node, "operator", Role.OPERATOR),
        )
    finally:
        a.stop()
        b.stop()


def _snapshot(node: ServiceProcess, headers: dict[str, str]) -> httpx.Response:
    url = f"{node.url}/api/cameras/{HELD_BY_B}/snapshot.jpg?mode=keyframe"
    return httpx.get(url, headers=headers, timeout=TIMEOUT_S)


def test_snapshot_and_clip_through_the_node_not_holding_the_camera(pair: Pair) -> None:
    # The same keyframe asked of both nodes is the same JPEG: A passed on B's picture.
    def same_keyframe() -> tuple[httpx.Response, httpx.Response] | None:
        through_a, from_b = _snapshot(pair.a, pair.handler), _snapshot(pair.b, pair.handler)
        assert through_a.status_code == 200, through_a.text
        assert from_b.status_code == 200, from_b.text
        captured = through_a.headers["x-captured-at"]
        return (through_a, from_b) if captured == from_b.headers["x-captured-at"] else None

    through_a, from_b = wait_until(same_keyframe, TIMEOUT_S, "one keyframe through both nodes")
    assert through_a.headers["content-type"] == "image/jpeg"
    assert through_a.content[:2] == b"\xff\xd8"
    assert through_a.content == from_b.content
    assert FORWARDED_HEADER not in through_a.headers
    assert "set-cookie" not in through_a.headers

    # A clip of B's camera attached through A: cut from B's live ring, stored by B.
    case = httpx.post(
        f"{pair.a.url}/api/cases", json={"title": "Forwarded clip"},
        headers=pair.handler, timeout=TIMEOUT_S,
    )  # fmt: skip
    assert case.status_code == 201, case.text
    number = case.json()["number"]
    clip = httpx.post(
        f"{pair.a.url}/api/cases/{number}/items/clip",
        json={"camera": HELD_BY_B, "pre_s": 2.0},
        headers=pair.handler, timeout=TIMEOUT_S,
    )  # fmt: skip
    assert clip.status_code == 201, clip.text
    item = clip.json()
    assert item["camera"] == HELD_BY_B and item["kind"] == "clip" and item["size"] > 0
    content = httpx.get(
        f"{pair.b.url}/api/cases/{number}/items/{item['id']}/content",
        headers=pair.handler, timeout=TIMEOUT_S,
    )  # fmt: skip
    assert content.status_code == 200 and b"ftyp" in content.content[:64]


def test_ptz_forwarded_with_a_cookie_session_and_never_twice(pair: Pair) -> None:
    ensure_user(pair.a.node, "steerer", Role.OPERATOR)
    client = httpx.Client(base_url=pair.a.url, timeout=TIMEOUT_S)
    signed_in = client.post("/api/auth/login", json={"name": "steerer", "password": TEST_PASSWORD})
    assert signed_in.status_code == 200, signed_in.text
    session = client.cookies["surveillance_session"]
    csrf = {"X-CSRF-Token": client.cookies["surveillance_csrf"]}
    # B answers (an RTSP camera cannot be steered: 409), with the cookie A passed on.
    moved = client.post(f"/api/cameras/{HELD_BY_B}/ptz", json={"pan": 0.5}, headers=csrf)
    assert moved.status_code == 409, moved.text
    assert "GB/T 28181" in moved.json()["detail"]
    assert session not in moved.text and "set-cookie" not in moved.headers
    # Without the CSRF token B refuses it as A would: the owner checks the credential itself.
    assert client.post(f"/api/cameras/{HELD_BY_B}/ptz", json={"pan": 0.5}).status_code == 403

    # A request already forwarded for a camera the receiver does not hold: never again.
    hop = {FORWARDED_HEADER: "b", **pair.operator}
    for node in (pair.a, pair.b):
        camera = HELD_BY_B if node is pair.a else HELD_BY_A
        refused = httpx.post(
            f"{node.url}/api/cameras/{camera}/ptz", json={"pan": 0.5}, headers=hop, timeout=30
        )
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] == "2"
        assert "moving between nodes" in refused.json()["detail"]
    # A forwarded request for a camera the receiver does hold is answered there.
    held = httpx.post(
        f"{pair.b.url}/api/cameras/{HELD_BY_B}/ptz", json={"pan": 0.5}, headers=hop, timeout=30
    )
    assert held.status_code == 409


def test_plan_on_another_node_carries_a_single_use_ticket(pair: Pair) -> None:
    body = {"camera": HELD_BY_B, "stream": "main", "caps": MSE_ONLY, "purpose": "grid"}
    plan = httpx.post(f"{pair.a.url}/api/live/plan", json=body, headers=pair.handler, timeout=30)
    assert plan.status_code == 200, plan.text
    planned = plan.json()
    assert planned["path"] == "mse" and planned["node"] == "b"
    mse_url = planned["mse_url"]
    assert mse_url.startswith(pair.b.url.replace("http", "ws", 1) + "/api/live/mse?")
    assert pair.handler["Authorization"].split()[1] not in mse_url
    # A camera this node holds is planned here: no node, no ticket.
    local = httpx.post(
        f"{pair.a.url}/api/live/plan", json={**body, "camera": HELD_BY_A},
        headers=pair.handler, timeout=30,
    )  # fmt: skip
    assert local.status_code == 200 and local.json()["node"] is None
    assert local.json()["mse_url"] is None

    # From a page that is no node of the cluster: refused, and the ticket is not spent.
    with pytest.raises(InvalidStatus) as refused:
        websocket_connect(mse_url, origin="http://evil.example", open_timeout=10)  # type: ignore[arg-type]
    assert refused.value.response.status_code == 403
    # From A's page: the video, once.
    with websocket_connect(mse_url, origin=pair.a.url, open_timeout=10, max_queue=None) as ws:  # type: ignore[arg-type]
        first = json.loads(ws.recv(timeout=20))
        assert first["type"] == "init", first
        assert isinstance(ws.recv(timeout=20), bytes)
    with pytest.raises(InvalidStatus) as again:
        websocket_connect(mse_url, origin=pair.a.url, open_timeout=10)  # type: ignore[arg-type]
    assert again.value.response.status_code == 403


def test_viewers_of_other_nodes_are_ended_there(pair: Pair) -> None:
    # A viewer id naming node B is B's to end; B says it has no such viewer of this user.
    gone = httpx.delete(
        f"{pair.a.url}/api/live/webrtc/b.no-such-viewer", headers=pair.handler, timeout=30
    )
    assert gone.status_code == 404 and "no such live viewer" in gone.json()["detail"]
    unknown = httpx.delete(
        f"{pair.a.url}/api/live/webrtc/zz.no-such-viewer", headers=pair.handler, timeout=30
    )
    assert unknown.status_code == 404 and "no node 'zz'" in unknown.json()["detail"]


def test_cluster_nodes_needs_system_read(pair: Pair) -> None:
    refused = httpx.get(f"{pair.a.url}/api/cluster/nodes", headers=pair.operator, timeout=30)
    assert refused.status_code == 403
    nodes = httpx.get(f"{pair.a.url}/api/cluster/nodes", headers=pair.admin, timeout=30)
    assert nodes.status_code == 200, nodes.text


def test_owner_down_is_a_503_naming_it_and_a_huge_body_is_refused_first(pair: Pair) -> None:
    pair.b.stop()
    try:
        down = _snapshot(pair.a, pair.handler)
        assert down.status_code == 503, down.text
        assert down.headers["retry-after"] == "2"
        detail = down.json()["detail"]
        assert "'b'" in detail and str(pair.b.port) not in detail
        assert pair.handler["Authorization"].split()[1] not in down.text
        # Over the body cap: refused by A before any forwarding (B is down: a forward
        # would have been a 503).
        huge = httpx.post(
            f"{pair.a.url}/api/cameras/{HELD_BY_B}/ptz",
            content=b'{"pan": 0.5, "x": "' + b"x" * (1024 * 1024) + b'"}',
            headers={**pair.operator, "content-type": "application/json"},
            timeout=TIMEOUT_S,
        )
        assert huge.status_code == 413
    finally:
        pair.b.start()
        # The restarted node is a new Node: give it the stand-ins again.
        urls = {"a": pair.a.url, "b": pair.b.url}
        holders = {HELD_BY_B: "b", HELD_BY_A: "a"}
        pair.b.node.ownership = StandInOwnership("b", holders, urls)  # type: ignore[attr-defined]
        pair.b.node.membership = StandInMembership(urls)  # type: ignore[attr-defined]
