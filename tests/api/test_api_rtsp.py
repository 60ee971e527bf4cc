"""The HTTP API against a running node and the real RTSP server: catalog, filters, health,
metrics, and live snapshots that are valid JPEGs of the source's size and really live."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from datetime import datetime

import cv2
import numpy as np
import pytest
from aiortc import RTCPeerConnection
from fastapi.testclient import TestClient

from surveillance.api.app import create_app
from surveillance.api.node import Node
from surveillance.config.models import AppConfig
from surveillance.services.snapshots import Snapshot, SnapshotMode, SnapshotService
from surveillance.simulator import Simulator
from surveillance.simulator.clips import read_frame_number
from tests.auth_helpers import bearer
from tests.conftest import CAMERA_PASSWORD
from tests.waits import wait_until

pytestmark = pytest.mark.rtsp

SNAPSHOT_SOURCES = {  # camera id -> (mount, source size)
    "gate-main": ("cam01", (640, 360)),
    "bframes": ("bframes", (640, 360)),
    "baseline": ("baseline", (640, 360)),
    "h265": ("h265", (640, 360)),
    "sdp-only": ("sdp-only", (640, 360)),
    "fullhd": ("fullhd", (1920, 1080)),
}


def api_config(simulator: Simulator, closed_port: int) -> AppConfig:
    cameras = [
        {
            "id": camera_id,
            "name": f"Camera {camera_id}",
            "platform": "town",
            "url": simulator.url(mount),
            "tags": ["traffic", "school-gate"] if camera_id == "gate-main" else ["traffic"],
        }
        for camera_id, (mount, _) in SNAPSHOT_SOURCES.items()
    ]
    cameras += [
        {
            "id": "with-creds",
            "name": "Credentials in URL",
            "platform": "police",
            "url": simulator.url("auth"),
            "tags": ["public-order"],
        },
        {
            "id": "dead",
            "name": "Nothing listens",
            "platform": "police",
            "url": f"rtsp://127.0.0.1:{closed_port}/x",
            "tags": ["forest-fire"],
        },
        {
            "id": "off",
            "name": "Switched off",
            "platform": "police",
            "enabled": False,
            "url": simulator.url("cam02"),
        },
        {
            "id": "lazy",
            "name": "On demand",
            "platform": "town",
            "mode": "on-demand",
            "url": simulator.url("cam03"),
            "tags": ["sanitation"],
        },
    ]
    return AppConfig.model_validate(
        {
            "ingest": {"backoff_initial_s": 0.2, "backoff_max_s": 1, "on_demand_idle_s": 2},
            "platforms": [{"id": "town", "name": "Town"}, {"id": "police", "name": "Police"}],
            "cameras": cameras,
        }
    )


@pytest.fixture(scope="module")
def client(simulator: Simulator) -> Iterator[TestClient]:
    import socket

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    closed_port = probe.getsockname()[1]
    probe.close()
    app = create_app(api_config(simulator, closed_port))
    with TestClient(app, base_url="http://localhost") as test_client:
        node: Node = app.state.node
        # Catalog, snapshots and metrics: an admin sees all of it.
        test_client.headers.update(bearer(node))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            cams = test_client.get("/api/cameras", params={"tags_any": "traffic"}).json()
            if all(c["state"] == "online" for c in cams) and len(cams) == len(SNAPSHOT_SOURCES):
                break
            time.sleep(0.2)
        yield test_client


def decode_jpeg(body: bytes) -> np.ndarray:
    picture = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    assert picture is not None, "not a valid JPEG"
    return picture


@pytest.mark.parametrize("camera_id", list(SNAPSHOT_SOURCES))
def test_snapshot_is_a_valid_jpeg_of_the_source_size(client: TestClient, camera_id: str) -> None:
    width, height = SNAPSHOT_SOURCES[camera_id][1]
    response = client.get(f"/api/cameras/{camera_id}/snapshot.jpg")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["cache-control"] == "no-store"
    picture = decode_jpeg(response.content)
    assert picture.shape == (height, width, 3)
    assert read_frame_number(picture) is not None, "the picture is not a frame of the source"
    assert int(response.headers["x-frame-age-ms"]) < 2000
    # ISO 8601 in UTC with Z, as the API's JSON times, and the moment the age is counted from.
    captured = response.headers["x-captured-at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", captured), captured
    age_s = time.time() - datetime.fromisoformat(captured).timestamp()
    assert -1 < age_s < 5, captured


def test_snapshot_is_live_not_a_cached_picture(client: TestClient) -> None:
    first = read_frame_number(
        decode_jpeg(client.get("/api/cameras/gate-main/snapshot.jpg").content)
    )
    # One second of the camera's frames arrives before the second snapshot (its packets are
    # counted, not the clock's seconds: on a loaded machine they are what may lag).
    ring = client.app.state.node.ingest.stream("gate-main").ring  # type: ignore[attr-defined]
    seen = ring.latest().seq
    wait_until(lambda: ring.latest().seq >= seen + 25, 10, "25 new packets from gate-main")
    second = read_frame_number(
        decode_jpeg(client.get("/api/cameras/gate-main/snapshot.jpg").content)
    )
    assert first is not None and second is not None
    # 25 fps for ~1 s; the 4 s clip loops, so compare modulo its 100 frames.
    advanced = (second - first) % 100
    assert 15 <= advanced <= 40, (first, second)


def test_keyframe_mode_and_thumbnail_width(client: TestClient) -> None:
    response = client.get(
        "/api/cameras/fullhd/snapshot.jpg", params={"mode": "keyframe", "width": 320}
    )
    assert response.status_code == 200
    assert response.headers["x-snapshot-mode"] == "keyframe"
    assert decode_jpeg(response.content).shape == (180, 320, 3)


def test_recent_mode_is_a_warm_decoders_picture_else_the_keyframe_and_says_which(
    client: TestClient,
) -> None:
    node: Node = client.app.state.node  # type: ignore[attr-defined]
    # A snapshot service of its own on the node's real ingest: its decoders start cold.
    snapshots = SnapshotService(node.ingest, warm_s=5.0)

    def take(mode: SnapshotMode) -> Snapshot:
        return asyncio.run(snapshots.snapshot("gate-main", mode=mode))

    try:
        cold = take(SnapshotMode.RECENT)
        # No GOP catch-up: the newest keyframe's picture (gate-main has one every 25
        # frames), said to be one, as old as it is.
        assert cold.mode is SnapshotMode.KEYFRAME
        number = read_frame_number(decode_jpeg(cold.jpeg))
        assert number is not None and number % 25 == 0, number
        assert cold.age_s < 2.0
        take(SnapshotMode.LATEST)  # starts the live decoder
        warm = take(SnapshotMode.RECENT)
        assert warm.mode is SnapshotMode.LATEST
        assert warm.age_s < 0.5
    finally:
        snapshots.close()


CHROMIUM_CAPS = {"webrtc_h264": True, "mse_avc": True, "mse_hevc": False}


def test_a_grid_tile_plans_fmp4_and_a_single_picture_webrtc(client: TestClient) -> None:
    def plan(**extra: str) -> dict[str, object]:
        body = {"camera": "gate-main", "caps": CHROMIUM_CAPS, **extra}
        response = client.post("/api/live/plan", json=body)
        assert response.status_code == 200, response.text
        answer: dict[str, object] = response.json()
        return answer

    assert plan(purpose="grid")["path"] == "mse"
    assert plan(purpose="single")["path"] == "webrtc"
    assert plan()["path"] == "webrtc"  # a page that does not say gets what it got before
    response = client.post(
        "/api/live/plan", json={"camera": "gate-main", "caps": CHROMIUM_CAPS, "purpose": "wall"}
    )
    assert response.status_code == 422


async def _offer_sdp() -> str:
    peer = RTCPeerConnection()
    peer.addTransceiver("video", direction="recvonly")
    await peer.setLocalDescription(await peer.createOffer())
    sdp = str(peer.localDescription.sdp)
    await peer.close()
    return sdp


def test_webrtc_pass_through_of_h265_is_refused_with_the_path_to_use(client: TestClient) -> None:
    sdp = asyncio.run(_offer_sdp())
    response = client.post("/api/live/webrtc", json={"camera": "h265", "sdp": sdp})
    assert response.status_code == 409, response.text
    detail = response.json()["detail"]
    assert "H.265" in detail and "WebRTC" in detail
    assert "/api/live/plan" in detail and '"transcode": true' in detail
    # The same offer for an H.264 camera is answered.
    answered = client.post("/api/live/webrtc", json={"camera": "gate-main", "sdp": sdp})
    assert answered.status_code == 200, answered.text
    assert answered.json()["type"] == "answer"


def test_offline_camera_answers_503_with_its_state_and_reason(client: TestClient) -> None:
    response = client.get("/api/cameras/dead/snapshot.jpg")
    assert response.status_code == 503
    body = response.json()
    assert body["state"] in ("offline", "connecting")
    assert body["camera"] == "dead"
    assert client.get("/api/cameras/off/snapshot.jpg").json()["state"] == "disabled"
    assert client.get("/api/cameras/nope/snapshot.jpg").status_code == 404


def test_on_demand_camera_connects_for_a_snapshot(client: TestClient) -> None:
    assert client.get("/api/cameras/lazy").json()["state"] in ("idle", "online")
    response = client.get("/api/cameras/lazy/snapshot.jpg")
    assert response.status_code == 200, response.text
    assert client.get("/api/cameras/lazy").json()["state"] == "online"


def test_camera_filters(client: TestClient) -> None:
    def ids(**params: object) -> set[str]:
        response = client.get("/api/cameras", params=params)
        assert response.status_code == 200
        return {c["id"] for c in response.json()}

    assert ids(platform="police") == {"with-creds", "dead", "off"}
    assert ids(tags_all=["traffic", "school-gate"]) == {"gate-main"}
    assert ids(tags_any="forest-fire,sanitation") == {"dead", "lazy"}
    assert ids(state="disabled") == {"off"}
    assert ids(q="nothing") == {"dead"}
    camera = client.get("/api/cameras/gate-main").json()
    assert camera["health"]["codec"] == "h264"
    assert camera["health"]["width"] == 640 and camera["health"]["fps"] > 10
    assert client.get("/api/cameras/nope").status_code == 404


def test_platform_rollup_and_health(client: TestClient) -> None:
    platforms = {p["id"]: p for p in client.get("/api/platforms").json()}
    police = platforms["police"]
    assert police["total"] == 3 and police["by_state"]["disabled"] == 1
    assert [w["id"] for w in police["worst"]] == ["dead"]
    health = client.get("/api/health").json()
    assert health["status"] == "degraded"
    assert health["cameras_total"] == len(SNAPSHOT_SOURCES) + 4
    # Health is public: a load balancer asks without credentials, and learns no platforms.
    anonymous = client.get("/api/health", headers={"Authorization": ""})
    assert anonymous.status_code == 200 and anonymous.json()["status"] == "degraded"
    assert "platforms" not in health


def test_metrics_expose_state_and_rates(client: TestClient) -> None:
    text = client.get("/metrics").text
    assert 'surveillance_camera_up{camera="gate-main",platform="town"} 1.0' in text
    assert 'surveillance_camera_state{camera="dead",platform="police",state="offline"} 1.0' in text
    assert "surveillance_platform_online_ratio" in text


def test_credentials_appear_in_no_response(client: TestClient) -> None:
    camera = client.get("/api/cameras/with-creds").json()
    assert camera["url"].startswith("rtsp://***@")
    expected = {  # path -> status: every route really answers, not a refusal
        "/api/cameras": 200,
        "/api/platforms": 200,
        "/api/health": 200,
        "/metrics": 200,
        "/api/openapi.json": 200,
        "/api/cameras/with-creds": 200,
        "/api/cameras/dead/snapshot.jpg": 503,
    }
    for path, status in expected.items():
        response = client.get(path)
        assert response.status_code == status, (path, response.status_code, response.text)
        assert CAMERA_PASSWORD not in response.text, path
        assert "operator:" not in response.text, path
