"""A platform's roll-up of its cameras' health: counts by state, the online ratio, and
the worst cameras first (for the platform pages, /api/health and the metrics).

Which cameras count, and as what (the same rule as the availability report, where a camera
is online unless it is in a camera.offline event):

* disabled cameras never count;
* an idle (parked) on-demand RTSP camera does not count: nobody watches it, so the node has
  no sign either way;
* an idle GB/T 28181 channel counts as available: its platform's keepalives and catalog say
  it can be played (a channel that cannot is never idle: its platform offline, unregistered
  or reporting the channel OFF make it offline, with that reason). GB channels are always
  on demand, so without this a healthy platform nobody watches would read 0 %.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from surveillance.catalog import Camera, Platform
from surveillance.media.health import HealthSnapshot, StreamState
from surveillance.services.device_health import NO_DEVICE, DeviceHealth

# Worst first, for the "worst cameras" of a platform.
_SEVERITY = {
    StreamState.OFFLINE: 0,
    StreamState.STALLED: 1,
    StreamState.CONNECTING: 2,
    StreamState.ONLINE: 3,
    StreamState.IDLE: 4,
    StreamState.DISABLED: 5,
}


@dataclass(frozen=True)
class CameraHealth:
    camera: Camera
    state: StreamState
    main: HealthSnapshot
    sub: HealthSnapshot | None
    device: DeviceHealth = NO_DEVICE  # its clock offset and ONVIF events (device_health.py)


@dataclass(frozen=True)
class PlatformHealth:
    platform_id: str
    name: str
    total: int
    online: int  # streams online now
    by_state: dict[str, int]
    online_ratio: float | None  # available / expected (None: nothing expected)
    worst: list[CameraHealth]
    available: int  # online, or idle GB channels that can be played
    expected: int  # the cameras that count (see the module's docstring)


def _idle_but_available(health: CameraHealth) -> bool:
    return health.state is StreamState.IDLE and health.camera.source_kind == "gb28181"


def roll_up(
    healths: Iterable[CameraHealth],
    platforms: Mapping[str, Platform],
    worst_count: int = 5,
    visible: Callable[[Camera], bool] | None = None,
) -> list[PlatformHealth]:
    """Per platform (every one of ``platforms`` unless ``visible`` limits the cameras: then
    only the platforms that have any of them)."""
    by_platform: dict[str, list[CameraHealth]] = (
        {p: [] for p in platforms} if visible is None else {}
    )
    for health in healths:
        if visible is not None and not visible(health.camera):
            continue
        by_platform.setdefault(health.camera.platform_id, []).append(health)
    result = []
    for platform_id, cameras in by_platform.items():
        counts: dict[str, int] = {state.value: 0 for state in StreamState}
        for health in cameras:
            counts[health.state.value] += 1
        idle_available = sum(1 for h in cameras if _idle_but_available(h))
        expected = len(cameras) - counts["disabled"] - counts["idle"] + idle_available
        online = counts["online"]
        available = online + idle_available
        troubled = [
            h
            for h in cameras
            if h.state not in (StreamState.ONLINE, StreamState.IDLE, StreamState.DISABLED)
        ]
        troubled.sort(key=lambda h: (_SEVERITY[h.state], h.main.state_since))
        platform = platforms.get(platform_id)
        result.append(
            PlatformHealth(
                platform_id=platform_id,
                name=platform.name if platform else platform_id,
                total=len(cameras),
                online=online,
                by_state=counts,
                online_ratio=(available / expected) if expected else None,
                worst=troubled[:worst_count],
                available=available,
                expected=expected,
            )
        )
    return result
