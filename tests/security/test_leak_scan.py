"""Leak scan: with credentials in every camera URL (in the userinfo, in the query string
the way Dahua-style cameras take them, in the path the XMEye/Uniview way, in ';' parameters
and in the fragment) and on a platform, no response of any route (errors
included, for every identity), no log record and no metric carries them."""

from __future__ import annotations

import json
import logging

import pytest
from websockets.sync.client import connect as websocket_connect

from tests.security.conftest import (
    IDENTITIES,
    PATH_FAILING_CAMERAS,
    QUERY_CAMERA,
    QUERY_FAILING_CAMERA,
    SECRETS,
    SecureNode,
)
from tests.security.test_route_matrix import build, routes, send
from tests.waits import wait_until

pytestmark = pytest.mark.rtsp


def _leaks(blob: bytes) -> list[str]:
    return [secret for secret in SECRETS if secret.encode() in blob]


def test_no_credential_leaves_the_node(
    secure: SecureNode, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    admin = secure.headers["admin"]

    def failing_error() -> str | None:
        camera = secure.client.get(f"/api/cameras/{QUERY_FAILING_CAMERA}", headers=admin).json()
        error: str | None = camera["health"]["last_error"]
        return error

    # The failing camera's error text is FFmpeg's, which names the whole URL.
    wait_until(failing_error, 20, "the query-string camera's first failure")
    for camera_id in PATH_FAILING_CAMERAS:
        wait_until(
            lambda c=camera_id: secure.client.get(f"/api/cameras/{c}", headers=admin).json()[
                "health"
            ]["last_error"],
            20,
            f"{camera_id}'s first failure",
        )
    problems = []
    for identity in (None, *IDENTITIES):
        for method, path, _route in routes(secure):
            for other in (False, True):
                call = build(secure, method, path, other)
                status, body = send(secure, identity, call)
                if leaked := _leaks(body):
                    problems.append(f"{identity} {method} {call.url} ({status}): {leaked}")
    # Error paths: unknown ids, malformed bodies, a camera that is not there.
    for url in (
        "/api/cameras/ghost",
        "/api/cameras/ghost/snapshot.jpg",
        "/api/cases/nope/items",
        f"/api/cameras/{QUERY_FAILING_CAMERA}",
        f"/api/cameras/{QUERY_FAILING_CAMERA}/snapshot.jpg",  # 503 with the reason
        *(f"/api/cameras/{camera_id}" for camera_id in PATH_FAILING_CAMERAS),
        *(f"/api/cameras/{camera_id}/snapshot.jpg" for camera_id in PATH_FAILING_CAMERAS),
    ):
        response = secure.client.get(url, headers=admin)
        problems += [f"{url}: {leak}" for leak in _leaks(response.content)]
    for url, body in (
        ("/api/live/plan", {"camera": "police-plain"}),
        ("/api/live/webrtc", {"camera": "police-plain", "sdp": "v=0 garbage"}),
        ("/api/cases", {"title": ""}),
    ):
        response = secure.client.post(url, json=body, headers=admin)
        problems += [f"{url}: {leak}" for leak in _leaks(response.content)]
    metrics = secure.client.get("/metrics", headers=admin)
    assert metrics.status_code == 200 and b"camera=" in metrics.content
    problems += [f"/metrics: {leak}" for leak in _leaks(metrics.content)]
    secure.node.audit.flush()
    for record in caplog.records:
        text = record.getMessage() + (caplog.text if record.exc_info else "")
        problems += [f"log {record.name}: {leak}" for leak in _leaks(text.encode())]
    assert len(caplog.records) > 0
    assert not problems, "\n".join(problems)


def test_stream_urls_are_shown_to_admins_only(secure: SecureNode) -> None:
    """Even redacted, a stream URL names hosts and paths of the camera network: only admins
    (who may read the node's configuration) see it; everyone else gets null."""
    for identity in IDENTITIES:
        cameras = secure.client.get("/api/cameras", headers=secure.headers[identity]).json()
        urls = {camera["id"]: camera["url"] for camera in cameras}
        if identity == "admin":
            assert urls[QUERY_CAMERA].endswith("?channel=1&subtype=0&user=***&password=***")
            assert "/cam14?username=***&pwd=***&token=***" in urls[QUERY_FAILING_CAMERA]
        else:
            assert set(urls.values()) == {None}, identity


def test_error_texts_name_no_stream_url_for_non_admins(secure: SecureNode) -> None:
    """FFmpeg's error text quotes the URL it was given; redacted, it still names the host,
    port and path. Who may not see stream URLs gets a placeholder in last_error, in the 503
    reason and in the platform roll-up; admins keep the redacted URL."""
    failing = (QUERY_FAILING_CAMERA, *PATH_FAILING_CAMERAS)
    for camera_id in failing:
        wait_until(
            lambda c=camera_id: secure.client.get(
                f"/api/cameras/{c}", headers=secure.headers["admin"]
            ).json()["health"]["last_error"],
            20,
            f"{camera_id}'s first failure",
        )
    port = secure.node.catalog.cameras[QUERY_CAMERA].stream_url().rsplit(":", 1)[1].split("/")[0]
    for identity in ("viewer", "operator", "admin"):
        headers = secure.headers[identity]
        texts = []
        for camera_id in failing:
            camera = secure.client.get(f"/api/cameras/{camera_id}", headers=headers).json()
            texts.append(camera["health"]["last_error"])
            shot = secure.client.get(f"/api/cameras/{camera_id}/snapshot.jpg", headers=headers)
            if shot.status_code == 503:  # the viewer may not take snapshots (403)
                texts += [shot.json()["reason"], shot.json()["detail"]]
        platforms = secure.client.get("/api/platforms", headers=headers).json()
        texts += [brief["last_error"] for p in platforms for brief in p["worst"]]
        texts.append(mse_error(secure, QUERY_FAILING_CAMERA, headers))
        blob = "\n".join(text or "" for text in texts)
        # FFmpeg's messages are told in words without the URL it quotes (media/source.py);
        # where a URL is left in a text, a non-admin gets "<stream URL>" in its place.
        assert "offline" in blob, blob
        if identity != "admin":
            for needle in ("rtsp", "127.0.0.1", f":{port}", "cam14", "channel=", "realmonitor"):
                assert needle not in blob, (identity, needle, blob)


def mse_error(secure: SecureNode, camera_id: str, headers: dict[str, str]) -> str:
    """What the live-video WebSocket says about a camera with no picture."""
    url = secure.service.url.replace("http", "ws", 1) + f"/api/live/mse?camera={camera_id}"
    with websocket_connect(url, additional_headers=headers, open_timeout=10) as ws:
        message = json.loads(ws.recv(timeout=15))
    assert message["type"] == "error", message
    return str(message["detail"])
