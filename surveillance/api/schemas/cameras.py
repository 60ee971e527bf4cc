"""Response models of the API; they expose no stream URL credentials by construction."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, Field

from surveillance.api.schemas.base import Out
from surveillance.catalog import Camera, Platform
from surveillance.media.health import HealthSnapshot
from surveillance.services.ingest import CameraHealth, PlatformHealth


def _iso(timestamp: float | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC)


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


class StreamHealthOut(BaseModel):
    state: str = Field(description="connecting, online, stalled, offline, disabled or idle")
    state_since: datetime | None
    last_packet_age_s: float | None
    fps: float | None
    bitrate_kbps: float | None
    codec: str | None
    profile: str | None
    width: int | None
    height: int | None
    reconnects: int
    last_error: str | None = Field(description="Why the stream last failed; no credentials.")
    last_error_kind: str | None
    last_error_at: datetime | None
    ring_bytes: int
    ring_seconds: float
    consumers: int
    dropped_by_consumers: int

    @classmethod
    def of(cls, h: HealthSnapshot) -> StreamHealthOut:
        return cls(
            state=h.state.value,
            state_since=_iso(h.state_since),
            last_packet_age_s=None
            if h.last_packet_age_s is None
            else round(h.last_packet_age_s, 3),
            fps=_round(h.fps, 2),
            bitrate_kbps=_round(h.bitrate_kbps, 1),
            codec=h.codec,
            profile=h.profile,
            width=h.width,
            height=h.height,
            reconnects=h.reconnects,
            last_error=h.last_error,
            last_error_kind=h.last_error_kind.value if h.last_error_kind else None,
            last_error_at=_iso(h.last_error_at),
            ring_bytes=h.ring_bytes,
            ring_seconds=round(h.ring_seconds, 2),
            consumers=h.consumers,
            dropped_by_consumers=h.dropped_by_consumers,
        )


class LocationOut(BaseModel):
    lat: float | None
    lon: float | None
    place: str | None


class CameraOut(BaseModel):
    id: str
    name: str
    platform: str
    tags: list[str]
    location: LocationOut | None
    transport: str
    mode: str
    enabled: bool
    has_sub_stream: bool
    url: str | None = Field(description="Main stream URL with any credentials replaced by ***.")
    state: str
    health: StreamHealthOut
    sub_health: StreamHealthOut | None

    @classmethod
    def of(cls, camera: Camera, health: CameraHealth) -> CameraOut:
        location = camera.location
        return cls(
            id=camera.id,
            name=camera.name,
            platform=camera.platform_id,
            tags=list(camera.tags),
            location=LocationOut(lat=location.lat, lon=location.lon, place=location.place)
            if location
            else None,
            transport=camera.transport.value,
            mode=camera.mode.value,
            enabled=camera.enabled,
            has_sub_stream=camera.has_sub_stream,
            url=camera.display_url(),
            state=health.state.value,
            health=StreamHealthOut.of(health.main),
            sub_health=StreamHealthOut.of(health.sub) if health.sub else None,
        )


class CameraBrief(BaseModel):
    id: str
    name: str
    state: str
    last_error: str | None
    state_since: datetime | None


class PlatformOut(BaseModel):
    id: str
    name: str
    vendor: str | None
    total: int
    online: int
    online_ratio: float | None = Field(
        description="Online cameras over cameras expected online (not disabled, not idle)."
    )
    by_state: dict[str, int]
    worst: list[CameraBrief]

    @classmethod
    def of(cls, platform: Platform | None, rollup: PlatformHealth) -> PlatformOut:
        return cls(
            id=rollup.platform_id,
            name=rollup.name,
            vendor=platform.vendor if platform else None,
            total=rollup.total,
            online=rollup.online,
            online_ratio=None if rollup.online_ratio is None else round(rollup.online_ratio, 4),
            by_state=rollup.by_state,
            worst=[
                CameraBrief(
                    id=h.camera.id,
                    name=h.camera.name,
                    state=h.state.value,
                    last_error=h.main.last_error,
                    state_since=_iso(h.main.state_since),
                )
                for h in rollup.worst
            ],
        )


class TagOut(Out):
    """Read from a :class:`~surveillance.catalog.Tag`."""

    id: str
    name: str
    color: str
    builtin: bool


class HealthOut(BaseModel):
    status: str = Field(description="ok, or degraded when any expected camera is not online")
    version: str
    uptime_s: float
    cameras_total: int
    cameras_online: int
    by_state: dict[str, int]


class UnavailableOut(BaseModel):
    detail: str
    camera: str
    state: str
    reason: str | None
