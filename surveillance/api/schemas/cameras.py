"""Response models of the API; they expose no stream URL credentials by construction."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field

from surveillance.api.schemas.base import Out, UtcTime
from surveillance.catalog import Camera, Platform
from surveillance.media.health import ErrorKind, HealthSnapshot, StreamState
from surveillance.redact import hide_urls
from surveillance.services.ingest import CameraHealth, PlatformHealth
from surveillance.services.recorder import RecordingStatus


def _iso(timestamp: float | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC)


def shown_error(text: str | None, *, show_urls: bool) -> str | None:
    """A failure text as this reader may see it: already free of credentials (the worker
    redacts it), and free of stream URLs too for who may not read them (``show_urls`` is
    :meth:`~surveillance.services.access.Access.sees_stream_urls`)."""
    return text if text is None or show_urls else hide_urls(text)


def _rounded(digits: int) -> AfterValidator:
    """Health figures to a precision worth reading (a camera's fps is not 24.99731)."""
    return AfterValidator(lambda value: None if value is None else round(value, digits))


class StreamHealthOut(Out):
    """Read from a :class:`~surveillance.media.health.HealthSnapshot`."""

    state: StreamState = Field(description="connecting, online, stalled, offline, disabled or idle")
    state_since: UtcTime | None = Field(
        description="Since when the stream is in this state; a camera retrying stays offline "
        "since its first failure, not since its last attempt."
    )
    last_packet_age_s: Annotated[float | None, _rounded(3)] = Field(
        description="Seconds since the last live picture (a packet after a silence that is "
        "not followed by more does not count)."
    )
    last_live_at: UtcTime | None = Field(
        description="Last seen: when the last live picture arrived; null if none yet."
    )
    retry_at: UtcTime | None = Field(
        description="While the stream is offline and retrying: when the next attempt starts."
    )
    attempting: bool = Field(description="A connection attempt is under way.")
    fps: Annotated[float | None, _rounded(2)]
    bitrate_kbps: Annotated[float | None, _rounded(1)]
    codec: str | None
    profile: str | None
    width: int | None
    height: int | None
    reconnects: int
    last_error: str | None = Field(
        description="Why the stream last failed; no credentials, and the stream URL replaced "
        "by <stream URL> for who may not see stream URLs."
    )
    last_error_kind: ErrorKind | None
    last_error_at: UtcTime | None
    warning: str | None = Field(
        description="The most serious failure since the stream was last online for a minute "
        "without a break (a redirect that may have sent the credentials elsewhere outranks "
        "a refused password, which outranks the rest); shown like last_error."
    )
    warning_kind: ErrorKind | None
    warning_at: UtcTime | None
    ring_bytes: int
    ring_seconds: Annotated[float, _rounded(2)]
    consumers: int
    dropped_by_consumers: int

    @classmethod
    def of(cls, health: HealthSnapshot, *, show_urls: bool) -> StreamHealthOut:
        out = cls.model_validate(health)
        out.last_error = shown_error(out.last_error, show_urls=show_urls)
        out.warning = shown_error(out.warning, show_urls=show_urls)
        return out


class RecordingStateOut(Out):
    """Read from the recorder's :class:`~surveillance.services.recorder.RecordingStatus`."""

    state: str = Field(description="recording, off, disk-full, error or waiting")
    stream: str | None = Field(description="main or sub: the stream being recorded")
    detail: str | None = Field(description="Why, when the state is not recording")


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
    url: str | None = Field(
        description="Main stream URL with its credentials (userinfo and query parameters "
        "named like users, passwords and tokens) replaced by ***; admins only, null for others."
    )
    state: str
    health: StreamHealthOut
    sub_health: StreamHealthOut | None
    clock_offset_s: Annotated[float | None, _rounded(3)] = Field(
        None,
        description="ONVIF cameras: the camera's clock minus the server's, in seconds, as last "
        "read (every onvif.clock_check_s); null when not read",
    )
    clock_flagged: bool = Field(
        False, description="The camera's clock is off by more than onvif.clock_offset_warn_s"
    )
    onvif_events: Literal["subscribed", "unsupported", "failing"] | None = Field(
        None,
        description="ONVIF motion and tamper events: subscribed (PullPoint open), unsupported "
        "(the device has none), failing (being subscribed again); null: not an ONVIF camera "
        "with events",
    )
    recording: RecordingStateOut | None = Field(
        None, description="Whether the camera is being recorded, which stream, and why not"
    )
    ptz: bool = Field(
        False, description="Whether it can be steered (PTZ), as far as the node knows now"
    )

    @classmethod
    def of(
        cls,
        camera: Camera,
        health: CameraHealth,
        *,
        show_url: bool,
        recording: RecordingStatus | None = None,
        ptz: bool = False,
    ) -> CameraOut:
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
            url=camera.display_url() if show_url else None,
            state=health.state.value,
            health=StreamHealthOut.of(health.main, show_urls=show_url),
            sub_health=StreamHealthOut.of(health.sub, show_urls=show_url) if health.sub else None,
            clock_offset_s=health.device.clock_offset_s,
            clock_flagged=health.device.clock_flagged,
            onvif_events=health.device.onvif_events,
            recording=None if recording is None else RecordingStateOut.model_validate(recording),
            ptz=ptz,
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
    def of(
        cls, platform: Platform | None, rollup: PlatformHealth, *, show_urls: bool
    ) -> PlatformOut:
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
                    last_error=shown_error(h.main.last_error, show_urls=show_urls),
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
    clocks_flagged: int = Field(
        0,
        description="Cameras whose clock is off by more than onvif.clock_offset_warn_s "
        "(each camera's offset is in GET /api/cameras)",
    )
    database: str | None = Field(
        default=None,
        description='cluster mode: "ok" or "unreachable" (this node\'s lease statements); '
        "null otherwise",
    )


class UnavailableOut(BaseModel):
    detail: str
    camera: str
    state: str
    reason: str | None
