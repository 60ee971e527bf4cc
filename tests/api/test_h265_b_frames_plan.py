"""The plan's ``b_frames`` for H.265 cameras is read from what they send: a camera with
B-frames says true, one without says false (media/reorder.py), never a blanket false.

The simulator is this module's own: the shared fleet has no H.265 camera with B-frames.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest

from surveillance.config.models import AppConfig
from surveillance.simulator import MountSpec, Simulator
from tests.auth_helpers import bearer
from tests.conftest import CLIP_CACHE, H265
from tests.service import ServiceProcess
from tests.waits import wait_until

pytestmark = pytest.mark.rtsp

H265_B_FRAMES = replace(H265, bframes=2)
CAPS = {"webrtc_h264": True, "mse_avc": True, "mse_hevc": True}


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    sim = Simulator(
        [MountSpec("hevc-b", H265_B_FRAMES), MountSpec("hevc", H265)], clip_dir=CLIP_CACHE
    )
    sim.start(timeout_s=180)
    config = AppConfig.model_validate(
        {
            "platforms": [{"id": "p", "name": "Platform"}],
            "cameras": [
                {"id": mount, "name": mount, "platform": "p", "url": sim.url(mount)}
                for mount in ("hevc-b", "hevc")
            ],
        }
    )
    process = ServiceProcess(config)
    try:
        process.start()
        with httpx.Client(base_url=process.url, timeout=15) as http:
            http.headers.update(bearer(process.node))
            yield http
    finally:
        process.stop()
        sim.stop()


@pytest.mark.parametrize(("camera", "expected"), [("hevc-b", True), ("hevc", False)])
def test_the_plan_says_whether_an_h265_camera_sends_b_frames(
    client: httpx.Client, camera: str, expected: bool
) -> None:
    def settled() -> dict[str, object] | None:
        response = client.post("/api/live/plan", json={"camera": camera, "caps": CAPS})
        if response.status_code != 200:
            return None
        body: dict[str, object] = response.json()
        return body if body["b_frames"] is not None else None

    plan = wait_until(settled, 30, f"{camera}: a B-frame verdict")
    assert plan["codec"] == "hevc"
    assert plan["b_frames"] is expected
