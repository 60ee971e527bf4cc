"""A simulated ONVIF PTZ camera's RTSP pictures follow what its PTZ service is told: the
stream URIs its media service gives are the fleet's PTZ-picture mounts, and a move through
onvif-zeep-async shows in the decoded picture of both profiles."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

import av
import pytest
from onvif import ONVIFCamera

from surveillance.simulator.onvif_fleet import OnvifFleet
from surveillance.simulator.picture_change import MOVED_THRESHOLD, difference
from surveillance.simulator.ptz_scene import U8Array, expected_view, make_scene
from tests.conftest import CLIP_CACHE
from tests.onvif_net import test_subnet
from tests.waits import wait_until

pytestmark = pytest.mark.rtsp

SUBNET = test_subnet()
PTZ_INDEX, BROKEN_INDEX, FIXED_INDEX = 0, 1, 2
PORT = 8085
MOVE_WAIT_S = 20.0  # a new view shows within ~0.2 s; generous for a loaded CI machine


@pytest.fixture(scope="module")
def fleet() -> Iterator[OnvifFleet]:
    specs = OnvifFleet.on_subnet(
        SUBNET, 3, first_host=51, http_port=PORT, faults={BROKEN_INDEX: "hang"}
    ).specs
    specs[FIXED_INDEX] = replace(specs[FIXED_INDEX], ptz=False, model="")
    with OnvifFleet(specs, scene_dir=CLIP_CACHE, discovery=False) as running:
        yield running


@pytest.fixture(scope="module")
def scene() -> U8Array:
    return make_scene(2560, 1440, seed=0)  # what the fleet's scene PNG holds


def pictures(url: str) -> Iterator[U8Array]:
    # No probing: at 10 fps FFmpeg would probe for ~3 s before the first picture.
    options = {"rtsp_transport": "tcp", "analyzeduration": "0", "probesize": "32"}
    with av.open(url, options=options, timeout=(10.0, 10.0)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="bgr24")


def shows(stream: Iterator[U8Array], expected: U8Array) -> bool:
    deadline = time.monotonic() + MOVE_WAIT_S
    while time.monotonic() < deadline:
        if difference(next(stream), expected) < MOVED_THRESHOLD:
            return True
    return False


async def test_ptz_moves_show_in_both_profiles_pictures(fleet: OnvifFleet, scene: U8Array) -> None:
    device = fleet.devices[PTZ_INDEX]
    broken, fixed = fleet.devices[BROKEN_INDEX], fleet.devices[FIXED_INDEX]
    assert fleet.simulator is not None
    served = (device.spec.address, fixed.spec.address)  # no mounts for a broken device
    assert set(fleet.simulator.status()) == {
        f"onvif/{a}/{k}" for a in served for k in ("main", "sub")
    }
    assert broken.spec.rtsp_main == "" and fixed.spec.model == "SimFixed"
    still = expected_view(scene, (640, 360), 0, 0, 0)
    fixed_pictures = pictures(fixed.spec.rtsp_main)
    assert difference(next(fixed_pictures), still) < MOVED_THRESHOLD
    fixed_pictures.close()

    camera = ONVIFCamera(
        device.spec.address, PORT, "admin", "admin-pass", adjust_time=True, no_cache=True
    )
    try:
        await camera.update_xaddrs()
        media = await camera.create_media_service()
        setup = {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}
        main_url = (
            await media.GetStreamUri({"ProfileToken": "Profile_1", "StreamSetup": setup})
        ).Uri
        sub_url = (
            await media.GetStreamUri({"ProfileToken": "Profile_2", "StreamSetup": setup})
        ).Uri
        assert main_url == fleet.simulator.url(
            f"onvif/{device.spec.address}/main", credentials=False
        )
        main, sub = pictures(main_url), pictures(sub_url)
        home = expected_view(scene, (640, 360), 0, 0, 0)
        assert difference(next(main), home) < MOVED_THRESHOLD

        ptz = await camera.create_ptz_service()
        profile = {"ProfileToken": "Profile_1"}
        target = (0.5, -0.3, 0.4)
        await ptz.AbsoluteMove(
            {
                **profile,
                "Position": {"PanTilt": {"x": target[0], "y": target[1]}, "Zoom": {"x": target[2]}},
            }
        )
        assert shows(main, expected_view(scene, (640, 360), *target))
        assert shows(sub, expected_view(scene, (320, 180), *target))

        # A continuous move (0.6 s left at full speed: 0.3 to the left), then the picture
        # rests where the device stopped.
        await ptz.ContinuousMove(
            {**profile, "Velocity": {"PanTilt": {"x": -1.0, "y": 0}}, "Timeout": "PT0.6S"}
        )
        wait_until(lambda: not device.moving(), MOVE_WAIT_S, "the move ends at its timeout")
        pan, tilt, zoom = device.position()
        assert pan == pytest.approx(0.2, abs=0.05) and (tilt, zoom) == pytest.approx((-0.3, 0.4))
        assert shows(main, expected_view(scene, (640, 360), pan, tilt, zoom))
        main.close()
        sub.close()
    finally:
        await camera.close()
