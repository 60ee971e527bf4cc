"""RTSP redirects cannot take the node past ``ingest.allowed_networks``.

The camera is a redirector on 127.0.0.2 (tests/rtsp_redirector.py: a fake, since no real
part here redirects on request); the place it sends the node to is the real GStreamer RTSP
server on 127.0.0.1, whose client count shows whether the node went there.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import av
import pytest

from surveillance.api.node import Node
from surveillance.config.models import AppConfig
from surveillance.media.health import StreamState
from surveillance.simulator import Simulator
from tests.rtsp_redirector import Redirector, redirector

pytestmark = pytest.mark.rtsp

TARGET_MOUNT = "baseline"  # used by no other camera of these tests
CAMERA = "redirecting"
SECRET = "Canary-Redirect-5e1f"
DEADLINE_S = 15
REDIRECT = "redirect"  # ErrorKind.REDIRECT, spelled so the test also runs where it is missing
# What FFmpeg sends as User-Agent (its default user_agent, LIBAVFORMAT_IDENT).
FFMPEG_USER_AGENT = "Lavf{}.{}.{}".format(*av.library_versions["libavformat"])


@pytest.fixture
def target(simulator: Simulator) -> str:
    # Credentials in the Location too: the refusal names the target, redacted.
    return simulator.url(TARGET_MOUNT) + f"?user=admin&password={SECRET}"


def config(camera_url: str, *, allowed: list[str], allow_redirects: bool = False) -> AppConfig:
    return AppConfig.model_validate(
        {
            "ingest": {
                "connect_timeout_s": 3,
                "backoff_initial_s": 0.2,
                "backoff_max_s": 0.5,
                "allowed_networks": allowed,
                # Named only when set: the default is what a node gets without it.
                **({"allow_redirects": True} if allow_redirects else {}),
            },
            "platforms": [{"id": "town", "name": "Town"}],
            "cameras": [{"id": CAMERA, "name": "Dahua", "platform": "town", "url": camera_url}],
        }
    )


def dahua_url(peer: Redirector) -> str:
    return peer.url(f"cam/realmonitor?channel=1&subtype=0&user=admin&password={SECRET}")


@asynccontextmanager
async def running(app_config: AppConfig) -> AsyncIterator[Node]:
    node = Node.build(app_config)
    await node.start()
    try:
        yield node
    finally:
        await node.stop()


def target_clients(simulator: Simulator) -> int:
    return int(simulator.status()[TARGET_MOUNT]["clients"])


async def wait_for(condition: Any, what: str, *, never: Any = None) -> None:
    """Wait for ``condition()``; with ``never``, fail at once if ``never()`` ever holds."""
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if never is not None and never():
            raise AssertionError(f"while waiting for {what}: the forbidden condition held")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {DEADLINE_S} s")
        await asyncio.sleep(0.02)
    if never is not None:
        assert not never()


@pytest.fixture
def loopback_redirector(target: str) -> Iterator[Redirector]:
    with redirector("127.0.0.2", target) as peer:
        yield peer


async def test_redirect_outside_allowed_networks_is_refused_and_never_followed(
    simulator: Simulator, loopback_redirector: Redirector
) -> None:
    app_config = config(dahua_url(loopback_redirector), allowed=["127.0.0.2/32"])
    async with running(app_config) as node:
        health = node.ingest.stream(CAMERA).health
        # Several attempts, each redirected; the target never sees the node.
        await wait_for(
            lambda: loopback_redirector.connections >= 3 and health.last_error_kind == REDIRECT,
            "three refused attempts",
            never=lambda: target_clients(simulator) > 0 or health.state is StreamState.ONLINE,
        )
        assert health.state is StreamState.OFFLINE
        error = health.last_error or ""
        assert "redirected to rtsp://127.0.0.1:" in error and "refused" in error
        assert "password=***" in error and SECRET not in error
        assert all(line.startswith("OPTIONS ") for line in loopback_redirector.requests)


async def test_allowed_redirect_must_stay_inside_allowed_networks(
    simulator: Simulator, loopback_redirector: Redirector
) -> None:
    app_config = config(
        dahua_url(loopback_redirector), allowed=["127.0.0.2/32"], allow_redirects=True
    )
    async with running(app_config) as node:
        health = node.ingest.stream(CAMERA).health
        await wait_for(
            lambda: loopback_redirector.connections >= 2 and health.last_error_kind == REDIRECT,
            "a refused redirect",
            never=lambda: target_clients(simulator) > 0,
        )
        assert "outside ingest.allowed_networks" in (health.last_error or "")


async def test_allowed_redirect_inside_allowed_networks_is_followed(
    simulator: Simulator, loopback_redirector: Redirector
) -> None:
    app_config = config(
        dahua_url(loopback_redirector),
        allowed=["127.0.0.2/32", "127.0.0.1/32"],
        allow_redirects=True,
    )
    async with running(app_config) as node:
        health = node.ingest.stream(CAMERA).health
        await wait_for(lambda: health.state is StreamState.ONLINE, "online through the redirect")
        assert target_clients(simulator) == 1


async def test_redirect_shown_only_to_ffmpeg_is_caught_after_opening(
    simulator: Simulator, target: str
) -> None:
    """A camera that answers the node's own check with 200 and FFmpeg's DESCRIBE with 302:
    FFmpeg follows it inside its open; the node sees where the connection went, and drops it
    before a single packet is delivered."""
    with redirector("127.0.0.2", target, honest_connections=1) as peer:
        async with running(config(dahua_url(peer), allowed=["127.0.0.2/32"])) as node:
            stream = node.ingest.stream(CAMERA)
            health = stream.health
            await wait_for(
                lambda: health.last_error_kind == REDIRECT,
                "the redirect caught after opening",
                never=lambda: health.state is StreamState.ONLINE,
            )
            assert "did not go to 127.0.0.2:" in (health.last_error or "")
            assert health.packets == 0 and stream.ring.nbytes == 0
            await wait_for(lambda: target_clients(simulator) == 0, "the session dropped")


async def test_camera_cannot_tell_the_check_from_ffmpeg_by_user_agent() -> None:
    """The acceptance test's camera: 200 to any request that does not look like FFmpeg's
    (the node's check), 302 to FFmpeg's, pointing at a host outside allowed_networks that
    asks for credentials (FFmpeg keeps them across a redirect). The check sends what FFmpeg
    sends, so it sees the 302 itself and refuses it: that host is never even contacted."""
    with (
        redirector("127.0.0.3", "", challenge='Basic realm="elsewhere"') as elsewhere,
        redirector(
            "127.0.0.2", elsewhere.url("cam1"), redirect_user_agent=FFMPEG_USER_AGENT
        ) as camera,
    ):
        url = camera.url("cam1").replace("rtsp://", f"rtsp://camu:{SECRET}@", 1)
        async with running(config(url, allowed=["127.0.0.2/32"])) as node:
            health = node.ingest.stream(CAMERA).health
            await wait_for(
                lambda: camera.connections >= 3 and health.last_error_kind == REDIRECT,
                "three refused attempts",
                never=lambda: elsewhere.connections > 0,
            )
            assert "redirected to rtsp://127.0.0.3:" in (health.last_error or "")
    assert not any(b"Authorization" in head for heads in elsewhere.heads for head in heads)


async def test_a_redirect_to_a_host_that_wants_credentials_is_named() -> None:
    """The limit that remains: a camera honest to the first connection (the check's) and
    302 to the next (FFmpeg's) still sends FFmpeg, credentials and all, to a host outside
    allowed_networks; when that host refuses them FFmpeg fails with 401. The node saw the
    connection while FFmpeg opened, and names the redirect rather than a bad password."""
    with (
        redirector("127.0.0.3", "", challenge='Basic realm="elsewhere"', delay_s=0.1) as elsewhere,
        redirector("127.0.0.2", elsewhere.url("cam1"), honest_connections=1) as camera,
    ):
        url = camera.url("cam1").replace("rtsp://", f"rtsp://camu:{SECRET}@", 1)
        async with running(config(url, allowed=["127.0.0.2/32"])) as node:
            health = node.ingest.stream(CAMERA).health
            await wait_for(
                lambda: health.last_error is not None, "the first failure after the redirect"
            )
            assert health.last_error_kind == REDIRECT, health.last_error
            assert "redirected to 127.0.0.3:" in (health.last_error or "")
    # What the README states as the residual limit: FFmpeg did send them.
    assert any(b"Authorization: Basic" in head for heads in elsewhere.heads for head in heads)
