"""Leak scan: with credentials in every camera URL (in the userinfo, and in the query string
the way Dahua-style cameras take them) and on a platform, no response of any route (errors
included, for every identity), no log record and no metric carries them."""

from __future__ import annotations

import logging

import pytest

from tests.security.conftest import (
    IDENTITIES,
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
