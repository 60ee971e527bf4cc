"""Forwarding between two real nodes (api/forward.py): two apps under uvicorn in cluster
mode sharing one real PostgreSQL database (real leases, real membership), real cameras from
the RTSP simulator.

The cameras' preferred owners (weighted rendezvous) put HELD_BY_B on node B and HELD_BY_A
on node A. Requests for HELD_BY_B sent to A are answered by B with the user's own
credentials (B authenticates them against the shared database).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aiortc import RTCPeerConnection
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as websocket_connect

from surveillance.api.forward import FORWARDED_HEADER
from surveillance.auth.roles import Role
from surveillance.cli import main
from surveillance.cluster.rendezvous import assign
from surveillance.config.models import AppConfig
from surveillance.services.live_sessions import ViewKind
from surveillance.simulator import Simulator
from tests.auth_helpers import TEST_PASSWORD, bearer, ensure_user
from tests.cases.conftest import PostgresCluster
from tests.service import ServiceProcess, free_port
from tests.waits import wait_until

pytestmark = [pytest.mark.postgresql, pytest.mark.rtsp]

HELD_BY_B = "cam01"  # see test_the_cameras_are_shared_out_as_the_test_expects
HELD_BY_A = "cam00"
SETTLE_S = 60  # both nodes up, the second one settled, the camera handed over
MSE_ONLY = {"webrtc_h264": False, "mse_avc": True, "mse_hevc": False}
TIMEOUT_S = 30
SECRET = "db-Pa55word-never-shown"  # a database password for the unreachable-database case


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
            "cluster": {"enabled": True, "node_id": node_id, "lease_s": 3, "renew_s": 1,
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
    wait_until(lambda: _settled(a, b), SETTLE_S, "each node holding its preferred camera")
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


def _settled(a: ServiceProcess, b: ServiceProcess) -> bool:
    own_a, own_b = a.node.ownership, b.node.ownership
    assert own_a is not None and own_b is not None
    return (
        own_b.holds(HELD_BY_B)
        and own_a.holds(HELD_BY_A)
        and own_a.owner_url(HELD_BY_B) == b.url
        and own_b.owner_url(HELD_BY_A) == a.url
    )


def test_the_cameras_are_shared_out_as_the_test_expects() -> None:
    assert assign([HELD_BY_A, HELD_BY_B], [("a", 1.0), ("b", 1.0)]) == {
        HELD_BY_A: "a",
        HELD_BY_B: "b",
    }


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
    assert pair.a.node.ownership is not None
    assert not pair.a.node.ownership.holds(HELD_BY_B)  # A never read the camera itself

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
    # One window of both cameras: A cuts its own, B cuts its camera's, one answer.
    both = httpx.post(
        f"{pair.a.url}/api/cases/{number}/items/clips",
        json={"camera_ids": [HELD_BY_A, HELD_BY_B], "pre_s": 2.0},
        headers=pair.handler, timeout=TIMEOUT_S,
    )  # fmt: skip
    assert both.status_code == 200, both.text
    results = {r["camera"]: r for r in both.json()["results"]}
    assert {c: r["status"] for c, r in results.items()} == {HELD_BY_A: 201, HELD_BY_B: 201}
    assert results[HELD_BY_B]["item"]["camera"] == HELD_BY_B


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
    # A's pages may open sockets on B (the CSP's connect-src), on no other origin.
    policy = plan.headers["content-security-policy"]
    connect = next(p for p in policy.split("; ") if p.startswith("connect-src"))
    sockets = {node.url.replace("http", "ws", 1) for node in (pair.a, pair.b)}
    assert connect.split()[:2] == ["connect-src", "'self'"]
    assert set(connect.split()[2:]) == sockets
    # A camera this node holds is planned here: no node, no ticket.
    local = httpx.post(
        f"{pair.a.url}/api/live/plan", json={**body, "camera": HELD_BY_A},
        headers=pair.handler, timeout=30,
    )  # fmt: skip
    assert local.status_code == 200 and local.json()["node"] is None
    assert local.json()["mse_url"] is None

    # From a page that is no node of the cluster: refused, and the ticket is spent (one
    # seen anywhere cannot be replayed from a good origin).
    with pytest.raises(InvalidStatus) as refused:
        websocket_connect(mse_url, origin="http://evil.example", open_timeout=10)  # type: ignore[arg-type]
    assert refused.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as burnt:
        websocket_connect(mse_url, origin=pair.a.url, open_timeout=10)  # type: ignore[arg-type]
    assert burnt.value.response.status_code == 403
    plan = httpx.post(f"{pair.a.url}/api/live/plan", json=body, headers=pair.handler, timeout=30)
    mse_url = plan.json()["mse_url"]
    # From A's page: the video, once.
    with websocket_connect(mse_url, origin=pair.a.url, open_timeout=10, max_queue=None) as ws:  # type: ignore[arg-type]
        first = json.loads(ws.recv(timeout=20))
        assert first["type"] == "init", first
        assert isinstance(ws.recv(timeout=20), bytes)
    with pytest.raises(InvalidStatus) as again:
        websocket_connect(mse_url, origin=pair.a.url, open_timeout=10)  # type: ignore[arg-type]
    assert again.value.response.status_code == 403

    # A page on another name of the service (one of B's server.allowed_hosts: localhost,
    # on any port, as a load balancer's) may use a ticket too; a look-alike may not.
    for origin, opens in (
        (f"http://localhost:{pair.a.port}", True),
        ("https://localhost:8443", True),
        ("http://localhost.evil.example", False),
        ("http://user@localhost:1", False),
    ):
        plan = httpx.post(f"{pair.a.url}/api/live/plan", json=body, headers=pair.handler,
                          timeout=30)  # fmt: skip
        ticketed = plan.json()["mse_url"]
        if opens:
            with websocket_connect(ticketed, origin=origin, open_timeout=10, max_queue=None) as ws:  # type: ignore[arg-type]
                assert json.loads(ws.recv(timeout=20))["type"] == "init", origin
        else:
            with pytest.raises(InvalidStatus) as foreign:
                websocket_connect(ticketed, origin=origin, open_timeout=10)  # type: ignore[arg-type]
            assert foreign.value.response.status_code == 403, origin


def test_mse_relayed_by_the_pages_own_node(pair: Pair) -> None:
    """The page's fallback when it cannot reach the owner: its own node relays the owner's
    socket, with the user's credentials, never twice."""
    a_socket = pair.a.url.replace("http", "ws", 1) + "/api/live/mse"
    views_on_b = pair.b.node.live_views.count(ViewKind.MSE)
    with websocket_connect(f"{a_socket}?camera={HELD_BY_B}&stream=main",
                           additional_headers=pair.handler, open_timeout=10) as ws:  # fmt: skip
        first = json.loads(ws.recv(timeout=20))
        assert first["type"] == "init" and first["mime"].startswith("video/mp4"), first
        assert isinstance(ws.recv(timeout=20), bytes)
        assert isinstance(ws.recv(timeout=20), bytes)
        # Served by B (A never connects a camera it does not hold): one more viewer there.
        assert pair.b.node.live_views.count(ViewKind.MSE) == views_on_b + 1
        assert not pair.a.node.ownership.holds(HELD_BY_B)  # type: ignore[union-attr]
    wait_until(lambda: pair.b.node.live_views.count(ViewKind.MSE) == views_on_b, TIMEOUT_S,
               "B's viewer ended with the page's socket")  # fmt: skip

    # Without a sign-in A refuses before relaying anything; a relayed socket is never
    # relayed again (a node that thinks another holds it says the camera is moving).
    with pytest.raises(InvalidStatus) as anonymous:
        websocket_connect(f"{a_socket}?camera={HELD_BY_B}", open_timeout=10)
    assert anonymous.value.response.status_code in (401, 403)
    hop = {**pair.handler, FORWARDED_HEADER: "b"}
    with websocket_connect(f"{a_socket}?camera={HELD_BY_B}", additional_headers=hop,
                           open_timeout=10) as ws:  # fmt: skip
        moving = json.loads(ws.recv(timeout=20))
        assert moving["type"] == "error" and "moving between nodes" in moving["detail"]


def test_webrtc_through_the_node_not_holding_the_camera(pair: Pair) -> None:
    """The offer goes to A, B answers with its own candidates: media flows from B to the
    browser, and the viewer (named `b.<id>`) is ended through A."""

    async def watch() -> tuple[str, int, int]:
        browser = RTCPeerConnection()
        browser.addTransceiver("video", direction="recvonly")
        connected = asyncio.Event()

        @browser.on("connectionstatechange")
        def _state() -> None:
            if browser.connectionState == "connected":
                connected.set()

        await browser.setLocalDescription(await browser.createOffer())
        async with httpx.AsyncClient(base_url=pair.a.url, timeout=TIMEOUT_S) as client:
            offer = {"camera": HELD_BY_B, "sdp": browser.localDescription.sdp}
            answer = await client.post("/api/live/webrtc", json=offer, headers=pair.handler)
            assert answer.status_code == 200, answer.text
            viewer = answer.json()["viewer"]
            await browser.setRemoteDescription(
                type(browser.localDescription)(sdp=answer.json()["sdp"], type="answer")
            )
            await asyncio.wait_for(connected.wait(), TIMEOUT_S)
            watching = len(pair.b.node.live_views)
            left = await client.delete(f"/api/live/webrtc/{viewer}", headers=pair.handler)
            assert left.status_code == 204, left.text
        await browser.close()
        return viewer, watching, left.status_code

    viewer, watching, _ = asyncio.run(watch())
    assert viewer.startswith("b.") and watching == 1
    wait_until(lambda: len(pair.b.node.live_views) == 0, TIMEOUT_S, "B's viewer ended")
    assert len(pair.a.node.live_views) == 0  # A only passed the offer on


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
    answer = httpx.get(f"{pair.a.url}/api/cluster/nodes", headers=pair.admin, timeout=30)
    assert answer.status_code == 200, answer.text
    listed = answer.json()
    assert listed["enabled"] is True and listed["node"] == "a"
    nodes = {node["id"]: node for node in listed["nodes"]}
    assert set(nodes) == {"a", "b"}
    assert all(node["live"] and node["age_s"] < 3 for node in nodes.values())
    assert nodes["a"]["this"] and not nodes["b"]["this"]
    assert nodes["b"]["url"] == pair.b.url and nodes["b"]["cameras"] >= 1


def test_nodes_command_prints_the_table_or_why_not(
    pair: Pair, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "node.yaml"
    database = pair.a.config.database.url
    assert database is not None
    shared = {"enabled": True, "node_id": "c", "url": "http://127.0.0.1:9", "shared_dir": "s"}
    config.write_text(
        json.dumps({"database": {"url": database.get_secret_value()}, "cluster": shared})
    )
    assert main(["nodes", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line}
    assert lines["a"][1] == "live" and lines["b"][1] == "live", out
    assert "2 of 2 nodes live" in out

    # A database that does not answer: exit 1, the reason, never the password.
    closed = f"postgresql+psycopg://surveillance:{SECRET}@127.0.0.1:{free_port()}/cluster"
    config.write_text(json.dumps({"database": {"url": closed}, "cluster": shared}))
    assert main(["nodes", "--config", str(config)]) == 1
    printed = capsys.readouterr()
    assert "FAILED: the database cannot be read" in printed.err
    assert SECRET not in printed.err + printed.out


def _close_listener(node: ServiceProcess) -> None:
    """Node B stops answering HTTP (its listening socket and connections closed) while it
    runs on and its leases hold: the owner unreachable, as after a network failure."""
    server = node._server
    assert server is not None

    def close() -> None:
        for listener in server.servers:
            listener.close()
        for connection in list(server.server_state.connections):
            connection.shutdown()

    node.on_loop(close)


def test_owner_down_is_a_503_naming_it_and_a_huge_body_is_refused_first(pair: Pair) -> None:
    # Last in the module: node B answers no more.
    _close_listener(pair.b)
    down = _snapshot(pair.a, pair.handler)
    assert down.status_code == 503, down.text
    assert down.headers["retry-after"] == "2"
    detail = down.json()["detail"]
    assert "'b'" in detail and str(pair.b.port) not in detail
    assert pair.handler["Authorization"].split()[1] not in down.text
    # Over the body cap: refused by A before any forwarding (B is down: a forward would
    # have been a 503).
    huge = httpx.post(
        f"{pair.a.url}/api/cameras/{HELD_BY_B}/ptz",
        content=b'{"pan": 0.5, "x": "' + b"x" * (1024 * 1024) + b'"}',
        headers={**pair.operator, "content-type": "application/json"},
        timeout=TIMEOUT_S,
    )
    assert huge.status_code == 413
