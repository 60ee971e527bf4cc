"""A camera retrying after failures: offline with its reason since its first failure, when
the next attempt is, and the most serious failure kept in sight across the attempts.

The redirecting camera is tests/rtsp_redirector.py's fake (no real part here redirects on
request), as in test_ingest_redirects.py.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from surveillance.api.node import Node
from surveillance.config.models import AppConfig
from surveillance.media.health import ErrorKind, StreamState
from surveillance.media.stream import Readiness
from tests.rtsp_redirector import redirector

pytestmark = pytest.mark.rtsp

SECRET = "Canary-Retry-7c2d"
DEADLINE_S = 15


def config(url: str, *, allowed: list[str] | None = None) -> AppConfig:
    return AppConfig.model_validate(
        {
            "ingest": {
                "connect_timeout_s": 3,
                "backoff_initial_s": 0.3,
                "backoff_max_s": 0.6,
                "allowed_networks": allowed or [],
            },
            "platforms": [{"id": "p", "name": "P"}],
            "cameras": [{"id": "cam", "name": "Cam", "platform": "p", "url": url}],
        }
    )


@asynccontextmanager
async def running(app_config: AppConfig) -> AsyncIterator[Node]:
    node = Node.build(app_config)
    await node.start()
    try:
        yield node
    finally:
        await node.stop()


async def wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {DEADLINE_S} s")
        await asyncio.sleep(0.02)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens once it is closed


async def test_a_retrying_camera_stays_offline_since_its_first_failure_with_retry_at() -> None:
    async with running(config(f"rtsp://127.0.0.1:{closed_port()}/x")) as node:
        stream = node.ingest.stream("cam")
        health = stream.health
        await wait_for(lambda: health.state is StreamState.OFFLINE, "offline")
        since = health.state_since
        # Every change the worker makes, as the health events see it (from its thread).
        changes: list[tuple[StreamState, float | None, bool, float]] = []
        stream.add_health_listener(
            lambda: changes.append((health.state, health.retry_at, health.attempting, time.time()))
        )
        reconnects = health.reconnects
        while health.reconnects < reconnects + 4:
            # A retrying camera fails a request at once, with its reason.
            assert stream.readiness() is Readiness.FAILED
            await asyncio.sleep(0.01)
        assert {state for state, *_ in changes} == {StreamState.OFFLINE}, changes
        assert health.state_since == since
        assert any(attempting for _, _, attempting, _ in changes)
        planned = [(retry_at, at) for _, retry_at, _, at in changes if retry_at is not None]
        assert len(planned) >= 3
        assert all(retry_at > at for retry_at, at in planned)  # the next attempt, ahead
        assert health.last_error_kind is ErrorKind.REFUSED
        assert node.ingest.camera_health("cam").main.state_since == since


async def test_the_credentials_warning_survives_the_next_attempts() -> None:
    """The first attempt: the camera answers the node's own check honestly, then sends
    FFmpeg to a host that asks for the credentials. Later attempts fail for other reasons
    (the check now sees the redirect and refuses it): the warning that the credentials may
    have been sent stays in sight."""
    with (
        redirector("127.0.0.3", "", challenge='Basic realm="elsewhere"', delay_s=0.1) as elsewhere,
        redirector("127.0.0.2", elsewhere.url("cam1"), honest_connections=1) as camera,
    ):
        url = camera.url("cam1").replace("rtsp://", f"rtsp://camu:{SECRET}@", 1)
        async with running(config(url, allowed=["127.0.0.2/32"])) as node:
            health = node.ingest.stream("cam").health
            await wait_for(lambda: health.last_error is not None, "the first failure")
            first = health.last_error or ""
            assert "may have sent the credentials there" in first, first
            since = health.state_since
            await wait_for(lambda: health.reconnects >= 3, "three more attempts")
            assert health.last_error != first  # the later attempts failed otherwise
            assert health.warning == first and health.warning_kind is ErrorKind.REDIRECT
            assert health.state is StreamState.OFFLINE and health.state_since == since
            snapshot = node.ingest.camera_health("cam").main
            assert snapshot.warning == first
            assert SECRET not in repr(snapshot)
