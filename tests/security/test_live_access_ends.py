"""Live views end when access ends: an fMP4 WebSocket after its token is revoked or its user
disabled, an MJPEG mosaic when a camera it shows leaves the user's scope, a WebRTC viewer
after its token is revoked; each end is audited as live.stop with the reason.

Each test makes its own user, so changing it touches no other test's identities."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiortc import RTCPeerConnection
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as websocket_connect

from surveillance.auth.roles import Role
from surveillance.services.live_sessions import LIVE_RECHECK_S
from tests.auth_helpers import ensure_user
from tests.security.conftest import OWN_CAMERA, SecureNode
from tests.waits import wait_until

pytestmark = pytest.mark.rtsp

# The re-check runs every LIVE_RECHECK_S; the end must follow within a few seconds of it.
ENDS_WITHIN_S = LIVE_RECHECK_S + 4.0
WS_POLICY_VIOLATION = 1008


def token_for(secure: SecureNode, name: str, **scope: Any) -> tuple[str, dict[str, str]]:
    """A new operator (limited by ``scope``) and an API token of theirs: (token id, headers)."""
    ensure_user(secure.node, name, Role.OPERATOR, **scope)
    info, secret = secure.node.auth.create_token(name, "live view")
    return info.id, {"Authorization": f"Bearer {secret}"}


def stops(secure: SecureNode, user: str, since: float) -> list[dict[str, Any]]:
    response = secure.client.get(
        "/api/audit",
        params={"user": user, "action": "live.stop", "since": since},
        headers=secure.headers["admin"],
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["entries"]
    return found


@contextlib.contextmanager
def open_mse(secure: SecureNode, headers: dict[str, str]) -> Iterator[ClientConnection]:
    url = secure.service.url.replace("http", "ws", 1) + f"/api/live/mse?camera={OWN_CAMERA}"
    with websocket_connect(url, additional_headers=headers, open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "init"
        ws.recv(timeout=10)  # the init segment: the viewer is watching
        yield ws


def closed_by_server(ws: ClientConnection, within_s: float) -> tuple[int, str]:
    """Read media until the server closes the socket; its close code and reason."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            ws.recv(timeout=max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            break
        except ConnectionClosed as closed:
            assert closed.rcvd is not None, "closed without a close frame"
            return closed.rcvd.code, closed.rcvd.reason
    raise AssertionError(f"the live view still ran {within_s:g} s after access ended")


def test_an_mse_view_ends_when_its_token_is_revoked(secure: SecureNode) -> None:
    since = time.time()
    token_id, headers = token_for(secure, "live-revoked")
    with open_mse(secure, headers) as ws:
        revoked = secure.client.delete(f"/api/tokens/{token_id}", headers=secure.headers["admin"])
        assert revoked.status_code == 204
        code, reason = closed_by_server(ws, ENDS_WITHIN_S)
    assert code == WS_POLICY_VIOLATION
    assert "token revoked" in reason
    entry = wait_until(lambda: stops(secure, "live-revoked", since), 5, "live.stop audited")[0]
    assert entry["camera_id"] == OWN_CAMERA
    assert "token revoked" in entry["detail"]["reason"]


def test_an_mse_view_ends_when_its_user_is_disabled(secure: SecureNode) -> None:
    since = time.time()
    _, headers = token_for(secure, "live-disabled")
    with open_mse(secure, headers) as ws:
        disabled = secure.client.patch(
            "/api/users/live-disabled", json={"disabled": True}, headers=secure.headers["admin"]
        )
        assert disabled.status_code == 200, disabled.text
        code, reason = closed_by_server(ws, ENDS_WITHIN_S)
    assert code == WS_POLICY_VIOLATION
    assert "disabled" in reason
    assert wait_until(lambda: stops(secure, "live-disabled", since), 5, "live.stop audited")


def test_an_mjpeg_mosaic_ends_when_a_camera_leaves_the_scope(secure: SecureNode) -> None:
    since = time.time()
    _, headers = token_for(secure, "live-rescoped", cameras=[OWN_CAMERA])
    # A preset filled with the camera, not the shared stored layout: other tests in this
    # package (the fuzzer, the route matrix) may delete or change stored layouts.
    url = "/api/mosaic/1.mjpeg"
    params = {"fps": 5, "cameras": OWN_CAMERA}
    with secure.client.stream("GET", url, params=params, headers=headers) as response:
        assert response.status_code == 200
        parts = response.iter_bytes()
        received = b""
        while received.count(b"Content-Type: image/jpeg") < 2:  # it streams
            received += next(parts)
        # The camera leaves the user's scope: they now see another platform's camera only.
        rescoped = secure.client.patch(
            "/api/users/live-rescoped",
            json={"cameras": ["police-plain"]},
            headers=secure.headers["admin"],
        )
        assert rescoped.status_code == 200, rescoped.text
        changed_at = time.monotonic()
        for _ in parts:  # the stream must end by itself
            assert time.monotonic() - changed_at < ENDS_WITHIN_S, "the mosaic still streams"
    entry = wait_until(lambda: stops(secure, "live-rescoped", since), 5, "live.stop audited")[0]
    assert entry["camera_id"] == OWN_CAMERA
    assert "no longer in the user's scope" in entry["detail"]["reason"]


def test_a_webrtc_viewer_ends_when_its_token_is_revoked(secure: SecureNode) -> None:
    since = time.time()
    token_id, headers = token_for(secure, "live-webrtc")
    states: list[str] = []

    async def watch() -> None:
        browser = RTCPeerConnection()
        browser.addTransceiver("video", direction="recvonly")

        @browser.on("connectionstatechange")
        def _state() -> None:
            states.append(browser.connectionState)

        await browser.setLocalDescription(await browser.createOffer())
        async with httpx.AsyncClient(base_url=secure.service.url, timeout=30) as client:
            answer = await client.post(
                "/api/live/webrtc",
                json={"camera": OWN_CAMERA, "sdp": browser.localDescription.sdp},
                headers=headers,
            )
            assert answer.status_code == 200, answer.text
            await browser.setRemoteDescription(
                type(browser.localDescription)(sdp=answer.json()["sdp"], type="answer")
            )
            await until(lambda: browser.connectionState == "connected", 15, "connected")
            revoked = await client.delete(
                f"/api/tokens/{token_id}", headers=secure.headers["admin"]
            )
            assert revoked.status_code == 204
            revoked_at = time.monotonic()
            # The server closes its end: DTLS close_notify ends the browser's connection.
            await until(
                lambda: browser.connectionState in ("closed", "failed"),
                ENDS_WITHIN_S,
                "the browser's connection ended",
            )
            assert time.monotonic() - revoked_at < ENDS_WITHIN_S
        await browser.close()

    asyncio.run(watch())
    assert "connected" in states
    entry = wait_until(lambda: stops(secure, "live-webrtc", since), 5, "live.stop audited")[0]
    assert entry["detail"]["path"] == "webrtc"
    assert "token revoked" in entry["detail"]["reason"]


async def until(condition: Any, within_s: float, what: str) -> None:
    """tests/waits.py's wait_until, for a condition that changes on this event loop."""
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {within_s:g} s"
        await asyncio.sleep(0.05)
