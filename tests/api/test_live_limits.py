"""Bounded work per viewer, on the real service with small ``limits``: the N+1th concurrent
mosaic, transcode and unconnected WebRTC offer of one user gets 429 with Retry-After, viewers
of one camera's transcode share one transcoder, and offers never completed are dropped after
the connect deadline, giving back their sockets."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from surveillance.api.node import Node
from surveillance.auth.roles import Role
from surveillance.config.models import AppConfig
from surveillance.simulator import Simulator
from tests.auth_helpers import bearer
from tests.security.conftest import make_offer
from tests.service import ServiceProcess
from tests.waits import wait_until

pytestmark = pytest.mark.rtsp

MOSAICS_PER_USER = 2
TRANSCODES_PER_USER = 1
PENDING_PEERS_PER_USER = 3
CONNECT_DEADLINE_S = 2.0


def limits_config(simulator: Simulator, data_dir: Path) -> AppConfig:
    return AppConfig.model_validate(
        {
            "server": {"data_dir": str(data_dir)},
            "ingest": {"backoff_initial_s": 0.2, "backoff_max_s": 1},
            "platforms": [{"id": "town", "name": "Town"}],
            "cameras": [
                {"id": "gate", "name": "Gate", "platform": "town", "url": simulator.url("cam10")}
            ],
            "limits": {
                "mosaics_per_user": MOSAICS_PER_USER,
                "transcodes_per_user": TRANSCODES_PER_USER,
                "pending_peers_per_user": PENDING_PEERS_PER_USER,
                "peer_connect_deadline_s": CONNECT_DEADLINE_S,
            },
        }
    )


@pytest.fixture(scope="module")
def service(
    simulator: Simulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[httpx.Client, Node]]:
    process = ServiceProcess(limits_config(simulator, tmp_path_factory.mktemp("limits")))
    process.start()
    try:
        with httpx.Client(base_url=process.url, timeout=30) as client:
            node = process.node
            admin = bearer(node)
            wait_until(
                lambda: client.get("/api/cameras/gate", headers=admin).json()["state"] == "online",
                30,
                "camera online",
            )
            yield client, node
    finally:
        process.stop()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))  # the service runs in this process


def assert_too_busy(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert int(response.headers["Retry-After"]) > 0
    assert response.json()["detail"]


def test_one_user_gets_429_past_their_mosaic_limit(service: tuple[httpx.Client, Node]) -> None:
    client, node = service
    headers = bearer(node, "mosaic-viewer", Role.OPERATOR)
    url = "/api/mosaic/1.mjpeg"
    params = {"cameras": "gate", "fps": "2"}
    with ExitStack() as streams:
        for _ in range(MOSAICS_PER_USER):
            response = streams.enter_context(
                client.stream("GET", url, params=params, headers=headers)
            )
            assert response.status_code == 200
        assert_too_busy(client.get(url, params=params, headers=headers))
        # Another user is not held back by this one's mosaics, and shares the renderer.
        other = bearer(node, "other-viewer", Role.OPERATOR)
        with client.stream("GET", url, params=params, headers=other) as response:
            assert response.status_code == 200
        assert len(node.mosaic.running()) == 1
    # Closed streams count no more.
    wait_until(lambda: len(node.live_views) == 0, 10, "mosaic views closed")
    with client.stream("GET", url, params=params, headers=headers) as response:
        assert response.status_code == 200


def test_one_user_gets_429_past_their_transcode_limit(
    service: tuple[httpx.Client, Node],
) -> None:
    client, node = service
    headers = bearer(node, "transcoder", Role.OPERATOR)
    offer = asyncio.run(make_offer())
    body = {"camera": "gate", "sdp": offer, "transcode": True}
    for _ in range(TRANSCODES_PER_USER):
        assert client.post("/api/live/webrtc", json=body, headers=headers).status_code == 200
    assert_too_busy(client.post("/api/live/webrtc", json=body, headers=headers))
    # Another user's transcode of the same camera at the same size shares the transcoder.
    other = bearer(node, "transcoder-2", Role.OPERATOR)
    assert client.post("/api/live/webrtc", json=body, headers=other).status_code == 200
    assert len(node.mosaic.transcoders()) == 1
    # Pass-through costs no decoding: not a transcode.
    passthrough = {**body, "transcode": False}
    assert client.post("/api/live/webrtc", json=passthrough, headers=headers).status_code == 200
    # Never connected, they are dropped after the deadline; then the user may transcode again.
    wait_until(lambda: node.live.viewers == 0, CONNECT_DEADLINE_S + 8, "viewers dropped")
    assert client.post("/api/live/webrtc", json=body, headers=headers).status_code == 200
    wait_until(lambda: node.live.viewers == 0, CONNECT_DEADLINE_S + 8, "viewers dropped")


def test_unanswered_offers_are_capped_and_dropped_after_the_deadline(
    service: tuple[httpx.Client, Node],
) -> None:
    client, node = service
    wait_until(lambda: node.live.viewers == 0, CONNECT_DEADLINE_S + 8, "no viewers left over")
    headers = bearer(node, "offerer", Role.OPERATOR)
    fds_before = open_fds()
    # Offers whose browser is gone at once: nothing will ever connect to their answers.
    offers = asyncio.run(_offers(PENDING_PEERS_PER_USER + 1))
    for offer in offers[:-1]:
        answer = client.post("/api/live/webrtc", json={"camera": "gate", "sdp": offer},
                             headers=headers)  # fmt: skip
        assert answer.status_code == 200, answer.text
    assert node.live.viewers == PENDING_PEERS_PER_USER
    assert open_fds() > fds_before  # each waiting peer holds sockets
    last = {"camera": "gate", "sdp": offers[-1]}
    assert_too_busy(client.post("/api/live/webrtc", json=last, headers=headers))
    answered_at = time.monotonic()
    wait_until(lambda: node.live.viewers == 0, CONNECT_DEADLINE_S + 8, "unconnected peers dropped")
    assert time.monotonic() - answered_at < CONNECT_DEADLINE_S + 8
    # Their sockets are given back (a little slack for the HTTP client's own connection).
    wait_until(lambda: open_fds() <= fds_before + 2, 5, "file descriptors given back")


async def _offers(count: int) -> list[str]:
    return [await make_offer() for _ in range(count)]
