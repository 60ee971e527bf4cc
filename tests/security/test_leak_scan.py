"""Leak scan: with credentials in every camera URL and on a platform, no response of any
route (errors included, for every identity), no log record and no metric carries them."""

from __future__ import annotations

import logging

import pytest

from tests.security.conftest import IDENTITIES, SECRETS, SecureNode
from tests.security.test_route_matrix import build, routes, send

pytestmark = pytest.mark.rtsp


def _leaks(blob: bytes) -> list[str]:
    return [secret for secret in SECRETS if secret.encode() in blob]


def test_no_credential_leaves_the_node(
    secure: SecureNode, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    problems = []
    for identity in (None, *IDENTITIES):
        for method, path, _route in routes(secure):
            for other in (False, True):
                call = build(secure, method, path, other)
                status, body = send(secure, identity, call)
                if leaked := _leaks(body):
                    problems.append(f"{identity} {method} {call.url} ({status}): {leaked}")
    # Error paths: unknown ids, malformed bodies, a camera that is not there.
    admin = secure.headers["admin"]
    for url in ("/api/cameras/ghost", "/api/cameras/ghost/snapshot.jpg", "/api/cases/nope/items"):
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
