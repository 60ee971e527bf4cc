"""A platform's roll-up of its cameras' health: counts by state, the online ratio, and
the worst cameras first (for the platform pages, /api/health and the metrics)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from surveillance.catalog import Camera, Platform
from surveillance.media.health import HealthSnapshot, StreamState

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


@dataclass(frozen=True)
class PlatformHealth:
    platform_id: str
    name: str
    total: int
    online: int
    by_state: dict[str, int]
    online_ratio: float | None  # of the cameras that should be online
    worst: list[CameraHealth]


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
        expected = len(cameras) - counts["disabled"] - counts["idle"]
        online = counts["online"]
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
                online_ratio=(online / expected) if expected else None,
                worst=troubled[:worst_count],
            )
        )
    return result
