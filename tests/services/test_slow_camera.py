"""A healthy camera whose frames come further apart than ``stall_after_s`` (1 fps under
``stall_after_s`` 0.8): it must show online, serve snapshots, move "last seen" and keep
its connection; and a freeze of it must still be caught, after a few of its own frame
intervals (media/liveness.py, services/ingest.py).

The simulator is this module's own: the freeze stops its server process.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest

from surveillance.config.models import AppConfig
from surveillance.simulator import MountSpec, Simulator
from tests.auth_helpers import bearer
from tests.conftest import SMALL_H264
from tests.freezable_simulator import freezable_simulator
from tests.service import ServiceProcess
from tests.services.test_frozen_platform import wait_online, watch

pytestmark = pytest.mark.rtsp

STALL_AFTER_S = 0.8
FRAME_S = 1.0  # the camera's frame interval: longer than STALL_AFTER_S
READ_TIMEOUT_S = 6.0
INTERVALS_PER_SILENCE = 3.0  # media/liveness.py
SLOW = replace(SMALL_H264, fps=1, gop_s=2.0, seconds=8.0)


@pytest.fixture(scope="module")
def own_simulator() -> Iterator[Simulator]:
    with freezable_simulator([MountSpec("slow", SLOW)]) as sim:
        yield sim


@pytest.fixture(scope="module")
def client(own_simulator: Simulator) -> Iterator[httpx.Client]:
    config = AppConfig.model_validate(
        {
            "ingest": {
                "connect_timeout_s": 3,
                "read_timeout_s": READ_TIMEOUT_S,
                "stall_after_s": STALL_AFTER_S,
                "backoff_initial_s": 0.2,
                "backoff_max_s": 0.5,
            },
            "platforms": [{"id": "p", "name": "Platform"}],
            "cameras": [
                {"id": "slow", "name": "slow", "platform": "p", "url": own_simulator.url("slow")}
            ],
        }
    )
    process = ServiceProcess(config)
    process.start()
    try:
        with httpx.Client(base_url=process.url, timeout=10) as http:
            http.headers.update(bearer(process.node))
            yield http
    finally:
        process.stop()


def test_a_camera_slower_than_stall_after_is_online_and_a_freeze_of_it_is_caught(
    own_simulator: Simulator, client: httpx.Client
) -> None:
    before = wait_online(client, "slow")
    time.sleep(3 * FRAME_S)  # a few intervals: its pace is learnt
    reconnects = int(before["health"]["reconnects"])  # type: ignore[index]
    seen = watch(client, "slow", 6.0, reconnects)
    health = client.get("/api/cameras/slow").json()["health"]
    # Not even a passing stall at its start: its pace is known from its second frame.
    assert health["warning"] is None, health["warning"]
    assert all(state == "online" for _, state in seen.states), sorted(
        {state for _, state in seen.states}
    )
    assert all(status == 200 for _, status, _ in seen.snapshots), {
        (status, body) for _, status, body in seen.snapshots if status != 200
    }
    # Snapshots are of recent pictures: at most about one frame interval old.
    assert max(int(body) for _, _, body in seen.snapshots) < FRAME_S * 1000 + 700
    assert seen.last_seen[-1] is not None and seen.last_seen[0] is not None
    assert seen.last_seen[-1] > seen.last_seen[0], "last seen never moved"
    assert seen.reopened_after_s is None, "a healthy slow camera was re-opened"

    pid = own_simulator.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        frozen = watch(client, "slow", INTERVALS_PER_SILENCE * FRAME_S + 2.5, reconnects)
    finally:
        os.kill(pid, signal.SIGCONT)
    stalled_at = next((t for t, state in frozen.states if state != "online"), None)
    print("stalled after", stalled_at)
    # Caught after a few of its own intervals (plus the monitor's round and some slack).
    assert stalled_at is not None and stalled_at <= INTERVALS_PER_SILENCE * FRAME_S + 1.5
    assert all(state != "online" for t, state in frozen.states if t >= stalled_at)
    wait_online(client, "slow")
