"""A platform that hangs with its connections open: the simulator's server process stopped
with SIGSTOP (nothing sent, connections kept), then let go with SIGCONT.

The camera must never show online until it really sends again, the snapshot route must
answer 503 throughout the freeze (never an old picture labelled fresh), "last seen" must
stay at the last real picture, and the connection must be re-opened at read_timeout_s
after the last live packet, not twice that. A second case keeps the connection busy (the
simulator's own "stall" fault: no video, RTCP still sent), where FFmpeg's time-out never
fires and the node must end the session itself.

The simulator here is this module's own: stopping the shared one would freeze every other
test's cameras.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

import httpx
import pytest

from surveillance.config.models import AppConfig
from surveillance.media.health import ErrorKind, StreamState
from surveillance.simulator import MountSpec, Simulator
from tests.auth_helpers import bearer
from tests.conftest import SMALL_H264
from tests.freezable_simulator import freezable_simulator
from tests.service import ServiceProcess
from tests.waits import wait_until

pytestmark = pytest.mark.rtsp

READ_TIMEOUT_S = 4.0
STALL_AFTER_S = 1.5
MONITOR_S = 0.5  # services/ingest.py MONITOR_INTERVAL_S
# Generous: a re-open is due at READ_TIMEOUT_S; the monitor looks twice a second and a
# loaded machine may be late. The bug this guards against took 2 x READ_TIMEOUT_S.
REOPEN_MARGIN_S = 2.0


@pytest.fixture(scope="module")
def own_simulator() -> Iterator[Simulator]:
    with freezable_simulator(
        [MountSpec("frozen", SMALL_H264), MountSpec("busy", SMALL_H264)]
    ) as sim:
        yield sim


@pytest.fixture(scope="module")
def service(own_simulator: Simulator) -> Iterator[tuple[httpx.Client, ServiceProcess]]:
    config = AppConfig.model_validate(
        {
            "ingest": {
                "connect_timeout_s": 2,
                "read_timeout_s": READ_TIMEOUT_S,
                "stall_after_s": STALL_AFTER_S,
                "backoff_initial_s": 0.2,
                "backoff_max_s": 0.5,
            },
            "platforms": [{"id": "hung", "name": "Hung platform"}],
            "cameras": [
                {"id": mount, "name": mount, "platform": "hung", "url": own_simulator.url(mount)}
                for mount in ("frozen", "busy")
            ],
        }
    )
    process = ServiceProcess(config)
    process.start()
    try:
        with httpx.Client(base_url=process.url, timeout=10) as client:
            client.headers.update(bearer(process.node))
            yield client, process
    finally:
        process.stop()


@dataclass
class Observed:
    states: list[tuple[float, str]] = field(default_factory=list)  # (seconds into it, state)
    snapshots: list[tuple[float, int, str]] = field(default_factory=list)  # (t, status, body)
    last_seen: list[datetime | None] = field(default_factory=list)
    reopened_after_s: float | None = None


def watch(client: httpx.Client, camera: str, seconds: float, reconnects_before: int) -> Observed:
    """What the API says about ``camera`` for ``seconds``, from now."""
    seen = Observed()
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        health = client.get(f"/api/cameras/{camera}").json()["health"]
        seen.states.append((elapsed, health["state"]))
        last = health["last_live_at"]
        seen.last_seen.append(datetime.fromisoformat(last) if last else None)
        if seen.reopened_after_s is None and health["reconnects"] > reconnects_before:
            seen.reopened_after_s = elapsed
        shot = client.get(f"/api/cameras/{camera}/snapshot.jpg")
        body = shot.text if shot.status_code != 200 else shot.headers["X-Frame-Age-Ms"]
        seen.snapshots.append((elapsed, shot.status_code, body))
        time.sleep(0.05)
    return seen


def wait_online(client: httpx.Client, camera: str) -> dict[str, object]:
    def online() -> dict[str, object] | None:
        body: dict[str, object] = client.get(f"/api/cameras/{camera}").json()
        return body if body["state"] == "online" else None

    return wait_until(online, 30, f"{camera} online")


def test_a_frozen_platform_never_looks_live_and_is_reopened_on_time(
    own_simulator: Simulator, service: tuple[httpx.Client, ServiceProcess]
) -> None:
    client, _ = service
    before = wait_online(client, "frozen")
    assert client.get("/api/cameras/frozen/snapshot.jpg").status_code == 200
    pid = own_simulator.pid
    assert pid is not None
    frozen_wall = time.time()
    os.kill(pid, signal.SIGSTOP)
    try:
        reconnects = int(before["health"]["reconnects"])  # type: ignore[index]
        seen = watch(client, "frozen", READ_TIMEOUT_S + REOPEN_MARGIN_S + 3, reconnects)
    finally:
        os.kill(pid, signal.SIGCONT)
    print("states:", [(round(t, 1), s) for t, s in seen.states if s != "online"][:3])
    stalled_at = next(t for t, state in seen.states if state != "online")
    assert stalled_at <= STALL_AFTER_S + MONITOR_S + 1.0
    # Never online again while frozen: the parser's flushed packet is not a live picture.
    after_stall = [state for t, state in seen.states if t >= stalled_at]
    assert "online" not in after_stall, after_stall
    # Snapshots: before the stall only honest ages; from the stall on, 503 with the reason.
    for t, status, body in seen.snapshots:
        if status == 200:
            assert t < stalled_at + MONITOR_S
            assert int(body) >= t * 1000 - 300, (t, body)  # the picture's true age
        else:
            assert status == 503, (t, status, body)
            assert "frozen" in body
    assert all(status == 503 for t, status, _ in seen.snapshots if t >= stalled_at)
    # Last seen: the last real picture, from before the freeze, never moved forward.
    assert all(s is not None and s.timestamp() <= frozen_wall + 0.2 for s in seen.last_seen)
    # Re-opened at the read time-out, not at twice it.
    assert seen.reopened_after_s is not None, "the connection was never re-opened"
    print(f"re-opened after {seen.reopened_after_s:.2f} s")
    assert seen.reopened_after_s <= READ_TIMEOUT_S + REOPEN_MARGIN_S
    # Let go: online again, with a fresh picture.
    wait_online(client, "frozen")
    shot = client.get("/api/cameras/frozen/snapshot.jpg")
    assert shot.status_code == 200 and int(shot.headers["X-Frame-Age-Ms"]) < 1000


def test_a_session_kept_busy_without_video_is_reopened_at_the_read_timeout(
    own_simulator: Simulator, service: tuple[httpx.Client, ServiceProcess]
) -> None:
    """No video, but RTCP keeps FFmpeg's socket from timing out: the node ends it."""
    client, process = service
    before = wait_online(client, "busy")
    health = process.node.ingest.stream("busy").health
    own_simulator.fault("busy", "stall")
    try:
        reconnects = int(before["health"]["reconnects"])  # type: ignore[index]
        started = time.monotonic()
        wait_until(lambda: health.reconnects > reconnects, READ_TIMEOUT_S + 8, "re-opened")
        took = time.monotonic() - started
        print(f"busy session re-opened after {took:.2f} s: {health.last_error}")
        assert took <= READ_TIMEOUT_S + REOPEN_MARGIN_S
        # Usually the node closes it; RTCP reports come every 2.5-7.5 s (RFC 3550's
        # randomised interval), so on a loaded machine FFmpeg's own time-out may now and
        # then come first. Either way it is a time-out, re-opened on time.
        assert health.last_error_kind is ErrorKind.TIMEOUT, health.last_error
    finally:
        own_simulator.fault("busy", "resume")
    wait_until(lambda: health.state is StreamState.ONLINE, 20, "busy online again")
