"""The platform roll-up's rule for on-demand cameras: an idle GB/T 28181 channel (its
platform alive, the channel ON) counts as available; an idle RTSP camera does not count;
a channel that cannot be played (offline with its reason) counts as down."""

from __future__ import annotations

from surveillance.catalog import Camera, Platform, runtime_camera
from surveillance.media.health import ErrorKind, StreamHealth, StreamState
from surveillance.services.platform_rollup import CameraHealth, roll_up


def _health(camera: Camera, state: StreamState) -> CameraHealth:
    health = StreamHealth(state)
    if state is StreamState.OFFLINE:
        health.set_error(ErrorKind.UNREACHABLE, "the platform reports the channel OFF", state)
    snapshot = health.snapshot(0, 0.0, 0, 0)
    return CameraHealth(camera, snapshot.state, snapshot, None)


def _camera(platform: str, n: int, url: str) -> Camera:
    return runtime_camera(id=f"{platform}.{n}", name=f"cam {n}", platform_id=platform, url=url)


def test_idle_gb_channels_count_as_available_and_idle_rtsp_cameras_do_not_count() -> None:
    platforms = {
        "city": Platform("city", "City", "GB/T 28181"),
        "town": Platform("town", "Town", None),
    }
    gb = [_camera("city", n, f"gb28181://city/3402000000132000000{n}") for n in range(4)]
    rtsp = [_camera("town", n, f"rtsp://192.0.2.1/{n}") for n in range(3)]
    healths = [
        _health(gb[0], StreamState.IDLE),
        _health(gb[1], StreamState.IDLE),
        _health(gb[2], StreamState.ONLINE),
        _health(gb[3], StreamState.OFFLINE),  # the platform reports it OFF
        _health(rtsp[0], StreamState.IDLE),
        _health(rtsp[1], StreamState.ONLINE),
        _health(rtsp[2], StreamState.OFFLINE),
    ]
    by_id = {r.platform_id: r for r in roll_up(healths, platforms)}
    city, town = by_id["city"], by_id["town"]
    assert (city.online, city.available, city.expected) == (1, 3, 4)
    assert city.online_ratio == 0.75
    assert [h.camera.id for h in city.worst] == ["city.3"]
    # RTSP as before: the idle camera is not expected, the offline one is.
    assert (town.online, town.available, town.expected) == (1, 1, 2)
    assert town.online_ratio == 0.5
    # A healthy GB platform nobody watches reads 100 %, not 0 % or "no figure".
    idle_only = roll_up([_health(gb[0], StreamState.IDLE)], {"city": platforms["city"]})
    assert idle_only[0].online_ratio == 1.0
