"""The configuration tree: strict pydantic models, one per section.

Unknown keys are errors (``extra="forbid"``): a typo in a command room's config must not
silently disable a camera. Every field carries a description; ``surveillance check-config``
and the README's configuration reference are written from these.
"""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from surveillance.config.names import DisplayName

BUILTIN_TAGS: dict[str, tuple[str, str]] = {
    # id: (display name, colour)
    "traffic": ("Traffic safety", "#f9a825"),
    "geological-hazard": ("Geological hazard", "#6d4c41"),
    "forest-fire": ("Forest fire", "#d84315"),
    "public-order": ("Public order", "#1565c0"),
    "school-gate": ("School gate", "#6a1b9a"),
    "sanitation": ("Sanitation", "#2e7d32"),
}

ALLOWED_STREAM_SCHEMES = ("rtsp", "rtsps")
RECORDINGS_DIR = "recordings"  # in server.data_dir, unless recording.dir says otherwise

_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
Identifier = Annotated[
    str,
    Field(
        pattern=_ID_PATTERN,
        description="Lower-case letters, digits, '.', '_' and '-'; 1 to 64 characters.",
    ),
]


# A DNS name or an IPv4 address, or an IPv6 address without brackets; no port, no scheme.
HostName = Annotated[
    str, Field(pattern=r"^(?:[A-Za-z0-9][A-Za-z0-9.-]{0,252}|[0-9A-Fa-f:.]{2,45})$")
]
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Transport(StrEnum):
    TCP = "tcp"
    UDP = "udp"


class IngestMode(StrEnum):
    ALWAYS_ON = "always-on"
    ON_DEMAND = "on-demand"


class RecordingMode(StrEnum):
    CONTINUOUS = "continuous"
    OFF = "off"


class RecordingStream(StrEnum):
    MAIN = "main"
    SUB = "sub"


def _unquoted_off(value: object) -> object:
    # YAML 1.1 (PyYAML) reads a bare `off` as false: `mode: off` means the mode "off".
    return RecordingMode.OFF if value is False else value


RecordingModeValue = Annotated[RecordingMode, BeforeValidator(_unquoted_off)]


class ServerConfig(_Strict):
    host: str = Field("127.0.0.1", description="Address the HTTP API listens on.")
    port: int = Field(8080, ge=1, le=65535, description="Port the HTTP API listens on.")
    data_dir: Path = Field(
        Path("data"),
        description="Directory for the service's own files; relative to the config file.",
    )
    tls_certfile: Path | None = Field(
        None, description="PEM certificate (chain) for HTTPS; relative to the config file."
    )
    tls_keyfile: Path | None = Field(
        None, description="PEM private key for HTTPS; relative to the config file."
    )
    allowed_hosts: list[HostName] = Field(
        default_factory=lambda: list(LOOPBACK_HOSTS),
        min_length=1,
        max_length=100,
        description=(
            "Host names (or IP addresses) browsers and clients may address the service by, "
            "without port; a request naming another Host is refused with 400. `server.host` "
            "is allowed as well when it is one address (not 0.0.0.0 or ::)."
        ),
    )

    @field_validator("allowed_hosts")
    @classmethod
    def _lower_case(cls, hosts: list[str]) -> list[str]:
        return [host.lower() for host in hosts]

    def host_names(self) -> frozenset[str]:
        """The names a request may give in its Host header: ``allowed_hosts``, and the
        address the service listens on when it is one (not a wildcard)."""
        hosts = set(self.allowed_hosts)
        if self.host not in (*WILDCARD_HOSTS, ""):
            hosts.add(self.host.lower())
        return frozenset(hosts)

    @model_validator(mode="after")
    def _tls_pair(self) -> ServerConfig:
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise ValueError("tls_certfile and tls_keyfile go together: set both or neither")
        return self


class AuthConfig(_Strict):
    session_idle_minutes: float = Field(
        60, gt=0, le=7 * 24 * 60, description="A session unused this long ends."
    )
    session_max_hours: float = Field(
        12, gt=0, le=30 * 24, description="A session ends this long after sign-in, used or not."
    )
    sign_in_max_failures: int = Field(
        5, ge=1, le=1000, description="Failed sign-ins from one address before it must wait."
    )
    sign_in_window_s: float = Field(
        300, gt=0, le=86400, description="The window failed sign-ins are counted in."
    )


class IngestConfig(_Strict):
    ring_seconds: float = Field(
        10.0,
        gt=0,
        le=600,
        description="Seconds of compressed packets kept per stream (pre-event buffer and "
        "the GOP cache a new viewer starts from). At least one whole GOP is always kept.",
    )
    connect_timeout_s: float = Field(
        5.0, gt=0, le=120, description="Seconds allowed to open a stream (TCP + RTSP set-up)."
    )
    read_timeout_s: float = Field(
        10.0,
        gt=0,
        le=600,
        description="Seconds without any data after which the connection is dropped and re-opened.",
    )
    stall_after_s: float = Field(
        3.0,
        gt=0,
        le=600,
        description="Seconds without packets after which an online stream shows as stalled.",
    )
    backoff_initial_s: float = Field(
        0.5, gt=0, le=60, description="First reconnect delay after a failure."
    )
    backoff_max_s: float = Field(
        10.0, gt=0, le=600, description="Cap of the exponential reconnect delay."
    )
    on_demand_idle_s: float = Field(
        30.0,
        ge=0,
        le=3600,
        description="An on-demand stream disconnects this long after its last consumer left.",
    )
    subscriber_queue_packets: int = Field(
        250,
        ge=8,
        le=100_000,
        description="Packets a consumer may fall behind before it starts losing packets "
        "(it then resumes at the next keyframe).",
    )
    allowed_networks: list[str] = Field(
        default_factory=list,
        description="If set, stream hosts must be literal addresses inside these CIDR "
        "ranges (or names listed here verbatim).",
    )
    allow_redirects: bool = Field(
        False,
        description="Follow a camera's RTSP redirect (3xx with Location), to hosts inside "
        "allowed_networks only; by default a redirecting camera stays offline.",
    )

    @field_validator("allowed_networks")
    @classmethod
    def _networks_parse(cls, value: list[str]) -> list[str]:
        for item in value:
            if "/" in item:
                ipaddress.ip_network(item, strict=False)
        return value


class TagConfig(_Strict):
    id: Identifier
    name: DisplayName = Field(
        min_length=1, max_length=80, description="Display name of the zone tag."
    )
    color: str = Field(
        "#607d8b",
        pattern=r"^#[0-9a-fA-F]{6}$",
        description="Chip colour as #rrggbb.",
    )


class PlatformConfig(_Strict):
    id: Identifier
    name: DisplayName = Field(
        min_length=1, max_length=200, description="Display name of the platform."
    )
    username: str | None = Field(
        None, description="Default user name for this platform's cameras (use ${VAR})."
    )
    password: SecretStr | None = Field(
        None, description="Default password for this platform's cameras (use ${VAR})."
    )
    vendor: str | None = Field(None, max_length=80, description="Free text, e.g. NVR make.")
    recording: RecordingPolicyConfig | None = Field(
        None,
        description="Recording policy of this platform's cameras; overrides their tags' "
        "and is overridden by the camera's own, field by field.",
    )


MAX_RETAIN_DAYS = 3650  # ten years: a typo of 30000 days is refused, not obeyed


class RecordingPolicyConfig(_Strict):
    """Recording settings of a camera, platform or tag; a field left out comes from the
    level below (camera > platform > tags > ``recording.default``)."""

    mode: RecordingModeValue | None = Field(
        None,
        description="continuous: record all the time; off: do not record. Among several "
        "tags of a camera, continuous wins over off.",
    )
    stream: RecordingStream | None = Field(
        None,
        description="main or sub: which stream to record; sub falls back to main when the "
        "camera has no sub_url (its recording state says so). Among several tags, main wins.",
    )
    retain_days: float | None = Field(
        None,
        gt=0,
        le=MAX_RETAIN_DAYS,
        description="Days a segment is kept after it ends (footage under a case hold is kept "
        "longer). Among several tags, the longest wins.",
    )


class RecordingDefaultConfig(_Strict):
    """The policy of a camera that neither it, its platform nor its tags set."""

    mode: RecordingModeValue = Field(
        RecordingMode.OFF,
        description="Off by default: an upgraded node never starts filling a disk by itself.",
    )
    stream: RecordingStream = Field(RecordingStream.MAIN, description="main or sub.")
    retain_days: float = Field(
        7, gt=0, le=MAX_RETAIN_DAYS, description="Days a segment is kept after it ends."
    )


class RecordingConfig(_Strict):
    dir: Path | None = Field(
        None,
        description="Directory of the recorded segments; relative to the config file. "
        "Default: recordings in server.data_dir.",
    )
    segment_s: float = Field(
        60,
        ge=1,
        le=600,
        description="A segment file closes at the first keyframe after this many seconds "
        "(and at the latest after one hour, without a keyframe).",
    )
    fragment_s: float = Field(
        1.0,
        gt=0,
        le=10,
        description="Longest fragment inside a segment file: a crash loses at most this "
        "much (plus the fragment being built up to the next keyframe).",
    )
    max_bytes: int | None = Field(
        None,
        gt=0,
        description="Most bytes of recordings on this node; the oldest footage goes first "
        "beyond it. null: only min_free_bytes limits.",
    )
    min_free_bytes: int = Field(
        1_000_000_000,
        ge=0,
        description="Bytes kept free on the recordings file system: the oldest footage is "
        "removed to keep them, and no new segment starts below it.",
    )
    max_export_s: float = Field(
        3600,
        gt=0,
        le=86400,
        description="Longest window of one export, clip or playback request, in seconds.",
    )
    default: RecordingDefaultConfig = Field(
        default_factory=RecordingDefaultConfig,
        description="Policy of cameras that neither they, their platform nor their tags set.",
    )
    tags: dict[Identifier, RecordingPolicyConfig] = Field(
        default_factory=dict,
        description="Policy by zone tag (built-in or declared), e.g. traffic: {mode: "
        "continuous, retain_days: 30}. A camera's platform and its own `recording` override "
        "them field by field; among several tags, the one that keeps more wins.",
    )


class LocationConfig(_Strict):
    lat: float | None = Field(None, ge=-90, le=90, description="Latitude, WGS84 degrees.")
    lon: float | None = Field(None, ge=-180, le=180, description="Longitude, WGS84 degrees.")
    place: str | None = Field(None, max_length=200, description="Place name or address.")


def _check_stream_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme.lower() not in ALLOWED_STREAM_SCHEMES:
        shown = parts.scheme or "(none)"
        raise ValueError(f"scheme {shown!r} is not allowed; use rtsp:// or rtsps://")
    if not parts.hostname:
        raise ValueError("URL has no host")
    if re.search(r"\s", url):
        raise ValueError("URL contains white space")
    return url


ONVIF_SCHEMES = ("http", "https")


class CameraOnvifConfig(_Strict):
    """The camera's ONVIF device service: PTZ, its clock and its motion and tamper events.
    Its user name and password are the camera's (or its platform's), as for the stream."""

    url: str = Field(
        description="Device service address, e.g. http://10.1.2.3/onvif/device_service."
    )
    ptz: bool | None = Field(
        None, description="Steer it from the wall; unset: if the device says it has PTZ."
    )
    home_preset: str | None = Field(
        None,
        max_length=64,
        description="Preset token the camera returns to when idle; unset: the device's "
        "home position.",
    )
    events: bool = Field(True, description="Motion and tamper events by PullPoint.")

    @field_validator("url")
    @classmethod
    def _device_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme.lower() not in ONVIF_SCHEMES:
            raise ValueError("use an http:// or https:// device service address")
        if not parts.hostname:
            raise ValueError("URL has no host")
        if parts.username or parts.password:
            raise ValueError("no credentials in the URL: give the camera's username/password")
        if re.search(r"\s", value):
            raise ValueError("URL contains white space")
        return value


class CameraConfig(_Strict):
    id: Identifier
    name: DisplayName = Field(
        min_length=1, max_length=200, description="Display name of the camera."
    )
    platform: Identifier = Field(description="Id of the platform this camera belongs to.")
    url: str = Field(description="Main stream, rtsp:// or rtsps://.")
    sub_url: str | None = Field(
        None, description="Optional low-resolution sub-stream, used for grids and mosaics."
    )
    tags: list[Identifier] = Field(
        default_factory=list, description="Zone tags (built-in or declared under `tags`)."
    )
    location: LocationConfig | None = Field(None, description="Where the camera is.")
    transport: Transport = Field(Transport.TCP, description="RTSP transport: tcp or udp.")
    mode: IngestMode = Field(
        IngestMode.ALWAYS_ON,
        description="always-on: connected all the time; on-demand: connected while a "
        "consumer (viewer, snapshot) needs it.",
    )
    enabled: bool = Field(True, description="A disabled camera is listed but not connected.")
    username: str | None = Field(None, description="Overrides the platform's user name.")
    password: SecretStr | None = Field(None, description="Overrides the platform's password.")
    recording: RecordingPolicyConfig | None = Field(
        None,
        description="Recording policy of this camera; overrides its platform's and tags', "
        "field by field.",
    )
    onvif: CameraOnvifConfig | None = Field(
        None, description="The camera's ONVIF device service (PTZ, clock, events)."
    )

    @field_validator("url")
    @classmethod
    def _url_scheme(cls, value: str) -> str:
        return _check_stream_url(value)

    @field_validator("sub_url")
    @classmethod
    def _sub_url_scheme(cls, value: str | None) -> str | None:
        return None if value is None else _check_stream_url(value)

    @field_validator("tags")
    @classmethod
    def _tags_unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


DATABASE_SCHEMES = ("sqlite", "postgresql")


class DatabaseConfig(_Strict):
    url: SecretStr | None = Field(
        None,
        description="SQLAlchemy URL of the case database, e.g. "
        "postgresql+psycopg://cases:${CASES_DB_PASSWORD}@db.example/cases; the password is "
        "treated as a secret. Default: the SQLite file cases.db in server.data_dir.",
    )

    @field_validator("url")
    @classmethod
    def _url_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        scheme = value.get_secret_value().split(":", 1)[0].split("+", 1)[0].lower()
        if scheme not in DATABASE_SCHEMES:
            raise ValueError(
                f"database scheme {scheme!r} is not supported; use sqlite or postgresql"
            )
        return value


class LimitsConfig(_Strict):
    """What one user, and the whole node, may run at once: each limit reached is answered
    with 429 and Retry-After, never with a slower node for everyone."""

    mosaics_per_user: int = Field(
        4, ge=1, le=1000, description="Mosaic streams (MJPEG or WebRTC) one user watches at once."
    )
    mosaics: int = Field(
        8,
        ge=1,
        le=1000,
        description="Mosaic renderers running on the node at once (viewers of the same "
        "layout, size and frame rate share one).",
    )
    transcodes_per_user: int = Field(
        2, ge=1, le=1000, description="Transcoded live views one user watches at once."
    )
    transcodes: int = Field(
        8, ge=1, le=1000, description="Transcoded live views on the node at once."
    )
    pending_peers_per_user: int = Field(
        8,
        ge=1,
        le=10000,
        description="WebRTC viewers of one user answered but not yet connected.",
    )
    pending_peers: int = Field(
        64, ge=1, le=10000, description="WebRTC viewers on the node answered but not yet connected."
    )
    peer_connect_deadline_s: float = Field(
        15,
        gt=0,
        le=300,
        description="A WebRTC viewer not connected this long after its answer is dropped.",
    )
    exports_per_user: int = Field(
        2,
        ge=1,
        le=1000,
        description="Exports of recorded footage (export.mp4 downloads) one user runs at once: "
        "each is written whole to <server.data_dir>/tmp before it is sent.",
    )
    exports: int = Field(
        4,
        ge=1,
        le=1000,
        description="Exports of recorded footage running on the node at once.",
    )
    event_streams_per_user: int = Field(
        8,
        ge=1,
        le=1000,
        description="Camera health event streams (GET /api/cameras/events) one user follows "
        "at once: one per open page.",
    )


def _luma_limits_error(
    dark: float, bright: float, field: str, at: tuple[str, ...] = ()
) -> InitErrorDetails | None:
    """dark_luma must be below bright_luma: otherwise a picture is too dark and too bright
    at once, and every camera raises an event. Reported at ``field`` (the one the file sets),
    so the loader names its line."""
    if dark < bright:
        return None
    if field == "dark_luma":
        message, value = f"must be below bright_luma ({bright:g})", dark
    else:
        message, value = f"must be above dark_luma ({dark:g})", bright
    error = PydanticCustomError("luma_limits", message + ": no picture could pass both checks")
    return InitErrorDetails(type=error, loc=(*at, field), input=value)


def _raise_all(title: str, errors: list[InitErrorDetails | None]) -> None:
    """A ValidationError raised in a validator keeps each error's own location."""
    found = [error for error in errors if error is not None]
    if found:
        raise ValidationError.from_exception_data(title, found)


class QualityThresholds(_Strict):
    """Limits of the picture checks, measured on one keyframe scaled to 160 pixels wide
    (full-range luma 0..255). The defaults and the figures they were chosen from are in
    media/picture_checks.py; ``Thresholds`` there holds the same numbers."""

    dark_luma: float = Field(
        18, ge=0, le=255, description="Mean luma below this: the picture is too dark."
    )
    bright_luma: float = Field(
        240, ge=0, le=255, description="Mean luma above this: the picture is too bright."
    )
    min_contrast: float = Field(
        6.0,
        ge=0,
        description="Standard deviation of luma below this: too little contrast (a covered "
        "lens shows a near-uniform picture).",
    )
    min_sharpness: float = Field(
        0.10,
        ge=0,
        description="Mean absolute Laplacian of luma per unit of contrast below this: out "
        "of focus (in focus measured 0.18-0.32, a defocused lens 0.05).",
    )
    one_colour: float = Field(
        0.95,
        gt=0,
        le=1,
        description="Share of the picture near its median colour at or above this, that "
        "colour not grey: one colour (a sprayed or painted lens).",
    )
    frozen_diff: float = Field(
        1.5,
        ge=0,
        description="Mean absolute luma change of the most changed 10x10 block between "
        "successive analysed pictures, both slightly blurred (coding noise is not a change), "
        "below this: the picture has not changed (frozen).",
    )
    moved_similarity: float = Field(
        0.5,
        ge=-1,
        le=1,
        description="Correlation (-1..1) of the picture's detail with the camera's reference "
        "picture below this, at the best shift up to 5 %: the camera was turned away or moved.",
    )

    @model_validator(mode="after")
    def _dark_below_bright(self) -> QualityThresholds:
        error = _luma_limits_error(self.dark_luma, self.bright_luma, "dark_luma")
        _raise_all("QualityThresholds", [error])
        return self


class QualityThresholdOverrides(_Strict):
    """Thresholds of one tag; a field left out keeps ``events.diagnosis.thresholds``."""

    dark_luma: float | None = Field(None, ge=0, le=255)
    bright_luma: float | None = Field(None, ge=0, le=255)
    min_contrast: float | None = Field(None, ge=0)
    min_sharpness: float | None = Field(None, ge=0)
    one_colour: float | None = Field(None, gt=0, le=1)
    frozen_diff: float | None = Field(None, ge=0)
    moved_similarity: float | None = Field(None, ge=-1, le=1)


class DiagnosisTagConfig(_Strict):
    """Diagnosis settings of cameras with one tag. A camera with several tags takes each
    field from the FIRST of its tags (in the camera's order) that sets it; a field no tag
    sets comes from ``events.diagnosis``."""

    enabled: bool | None = Field(None, description="false: no quality checks on these cameras.")
    settle_s: float | None = Field(None, ge=0, le=3600)
    hold_s: float | None = Field(None, ge=0, le=3600)
    clear_s: float | None = Field(None, ge=0, le=3600)
    thresholds: QualityThresholdOverrides = Field(default_factory=QualityThresholdOverrides)


class DiagnosisConfig(_Strict):
    enabled: bool = Field(True, description="Video-quality checks on every enabled camera.")
    interval_s: float = Field(
        5,
        ge=1,
        le=3600,
        description="One keyframe is decoded per camera this often (its sub-stream where it "
        "has one); every other check reads packet sizes and times only, without decoding.",
    )
    settle_s: float = Field(
        20,
        ge=0,
        le=3600,
        description="After a camera (re)connects, no quality verdicts for this long.",
    )
    hold_s: float = Field(
        15,
        ge=0,
        le=3600,
        description="A check must fail this long before it raises an event.",
    )
    clear_s: float = Field(
        20,
        ge=0,
        le=3600,
        description="A failed check must pass again this long before its event ends "
        "(hysteresis: no event flapping on a borderline picture).",
    )
    thresholds: QualityThresholds = Field(
        default_factory=QualityThresholds, description="Limits of the picture checks."
    )
    tags: dict[Identifier, DiagnosisTagConfig] = Field(
        default_factory=dict,
        description="Overrides by zone tag, e.g. forest-fire: {hold_s: 30}. A camera with "
        "several tags takes each field from the first of its tags that sets it.",
    )

    @model_validator(mode="after")
    def _tags_dark_below_bright(self) -> DiagnosisConfig:
        # A tag's limits are merged with these ones: a tag that sets only dark_luma 250
        # contradicts the default bright_luma 240 just as much.
        errors = []
        for tag_id, tag in self.tags.items():
            own = tag.thresholds
            dark = self.thresholds.dark_luma if own.dark_luma is None else own.dark_luma
            bright = self.thresholds.bright_luma if own.bright_luma is None else own.bright_luma
            field = "dark_luma" if own.dark_luma is not None else "bright_luma"
            errors.append(_luma_limits_error(dark, bright, field, ("tags", tag_id, "thresholds")))
        _raise_all("DiagnosisConfig", errors)
        return self


class ZoneMotionConfig(_Strict):
    fps: float = Field(
        5, gt=0, le=25, description="Pictures analysed per second per camera with a zone armed."
    )
    width: int = Field(
        160,
        ge=32,
        le=640,
        description="Pictures are analysed at this width in pixels (the height keeps the "
        "aspect), in grey.",
    )
    hold_s: float = Field(
        1.0, ge=0, le=600, description="Motion must last this long to raise an alarm."
    )
    clear_s: float = Field(10, ge=0, le=3600, description="No motion this long ends the alarm.")
    cooldown_s: float = Field(
        30,
        ge=0,
        le=86400,
        description="After an alarm ends, the same zone raises a new one only this long later.",
    )


class EventsConfig(_Strict):
    """Events and alarms: health, picture quality and zone motion on one bus."""

    retain_days: float = Field(
        90,
        gt=0,
        le=MAX_RETAIN_DAYS,
        description="Events (and their snapshots) that started longer ago are removed.",
    )
    offline_after_s: float = Field(
        15,
        ge=0,
        le=3600,
        description="A camera offline this long raises camera.offline; one back within it "
        "raises nothing (no burst of events from a flapping camera).",
    )
    stalled_after_s: float = Field(
        15, ge=0, le=3600, description="The same for a camera whose stream stalled."
    )
    storm_cameras: int = Field(
        3,
        ge=2,
        le=100000,
        description="This many cameras of one platform going down within storm_window_s "
        "(or every camera of a smaller platform) collapse into one platform.offline event.",
    )
    storm_window_s: float = Field(
        20, gt=0, le=3600, description="The window of storm_cameras, in seconds."
    )
    alarm_clip_pre_s: float = Field(
        10,
        ge=0,
        le=120,
        description="An alarm's clip starts this long before it (the case's clip, and the "
        "clip the node keeps of an unrecorded camera's alarm).",
    )
    alarm_clip_post_s: float = Field(20, gt=0, le=300, description="And ends this long after it.")
    alarm_clips_max_mb: float = Field(
        1024,
        gt=0,
        le=10_000_000,
        description="The clips kept of alarms (server.data_dir/event-clips) take at most "
        "this much disk; the oldest give way to a new one.",
    )
    diagnosis: DiagnosisConfig = Field(
        default_factory=DiagnosisConfig, description="Video-quality diagnosis."
    )
    zones: ZoneMotionConfig = Field(
        default_factory=ZoneMotionConfig, description="Motion in drawn zones."
    )


# -- GB/T 28181 ------------------------------------------------------------------------------
GbId = Annotated[
    str,
    Field(
        pattern=r"^[0-9]{20}$",
        description="A GB/T 28181 id: 20 digits (centre code, industry, type, serial).",
    ),
]
# A channel's camera id is "<platform id>.<20-digit channel id>", at most 64 characters.
GB_PLATFORM_ID_MAX = 43


class GbTransport(StrEnum):
    """How a platform sends a stream's RTP: to a UDP port of ours, over a TCP connection it
    opens to us (``tcp-passive``: we listen) or one we open to it (``tcp-active``)."""

    UDP = "udp"
    TCP_PASSIVE = "tcp-passive"
    TCP_ACTIVE = "tcp-active"


class GbCoordinates(StrEnum):
    GCJ02 = "gcj02"
    WGS84 = "wgs84"


class GbTagRuleConfig(_Strict):
    """Tags given to a platform's channels by where they are or which group they are in.
    A rule with both conditions needs both; a channel gets the tags of every rule it meets."""

    civil_code: str | None = Field(
        None,
        pattern=r"^[0-9]{2,20}$",
        description="Channels whose CivilCode (administrative region) starts with these digits.",
    )
    business_group: GbId | None = Field(
        None, description="Channels in this business group or virtual organisation (its id)."
    )
    tags: list[Identifier] = Field(min_length=1, max_length=20, description="Tags to give.")

    @model_validator(mode="after")
    def _has_a_condition(self) -> GbTagRuleConfig:
        if self.civil_code is None and self.business_group is None:
            raise ValueError("a tag rule needs civil_code, business_group or both")
        return self


class GbPlatformConfig(_Strict):
    """A lower platform (or device) that registers to this service."""

    id: Identifier = Field(
        max_length=GB_PLATFORM_ID_MAX,
        description="This service's id for the platform; its channels' camera ids start with it.",
    )
    name: DisplayName = Field(min_length=1, max_length=200, description="Display name.")
    device_id: GbId = Field(description="The SIP id the platform registers with.")
    password: SecretStr = Field(
        description="The digest password the platform registers with (use ${VAR})."
    )
    transport: GbTransport = Field(
        GbTransport.UDP, description="How the platform is asked to send video."
    )
    coordinates: GbCoordinates = Field(
        GbCoordinates.GCJ02,
        description="What the platform's longitudes and latitudes are: gcj02 (most Chinese "
        "map systems; converted to WGS-84) or wgs84.",
    )
    tags: list[Identifier] = Field(
        default_factory=list, max_length=20, description="Tags every channel of it gets."
    )
    tag_rules: list[GbTagRuleConfig] = Field(default_factory=list, max_length=1000)
    max_channels: int = Field(
        20000, ge=1, le=200000, description="Channels beyond this many are refused, logged."
    )
    recording: RecordingPolicyConfig | None = Field(
        None, description="Recording policy of the platform's channels (as for platforms)."
    )


WILDCARD_HOSTS = ("0.0.0.0", "::")
RTP_RANGE_REVERSED = "rtp_port_max is below rtp_port_min"
MEDIA_HOST_REQUIRED = (
    "media_host is required when listen is 0.0.0.0 or ::: platforms must be "
    "told one address to send video to"
)
DEFAULT_SIP_ID = "34020000002000000001"


def own_sip_id(platform_id: str, device_id: str) -> str:
    """A platform registering with this service's own SIP id: requests from it and to it
    could not be told apart from this service's own."""
    return (
        f"platform {platform_id!r}: device_id {device_id} is this service's own sip_id; "
        "give the platform its own id"
    )


class Gb28181Config(_Strict):
    """This service as the upper platform GB/T 28181 platforms register to."""

    enabled: bool = Field(False, description="Run the SIP server.")
    sip_id: GbId = Field(DEFAULT_SIP_ID, description="This service's SIP id.")
    domain: str = Field(
        "3402000000", pattern=r"^[0-9]{10}$", description="SIP domain (realm): 10 digits."
    )
    listen: str = Field("127.0.0.1", description="Address the SIP server listens on, UDP and TCP.")
    sip_port: int = Field(5060, ge=1, le=65535, description="SIP port, UDP and TCP.")
    media_host: str | None = Field(
        None,
        description="The address platforms send video to (written into each INVITE); "
        "defaults to `listen`, and is required when `listen` is 0.0.0.0 or ::.",
    )
    rtp_port_min: int = Field(30000, ge=1024, le=65535, description="First RTP port.")
    rtp_port_max: int = Field(30499, ge=1024, le=65535, description="Last RTP port.")
    register_expires_max_s: int = Field(
        3600, ge=60, le=86400, description="A longer Expires asked for is cut to this."
    )
    keepalive_interval_s: float = Field(
        60, gt=0, le=3600, description="How often platforms are expected to send Keepalive."
    )
    keepalive_missed: int = Field(
        3, ge=1, le=100, description="Missed keepalives in a row that mark a platform offline."
    )
    catalog_refresh_s: float = Field(
        3600, ge=10, le=86400 * 7, description="How often a platform's catalog is read again."
    )
    invite_timeout_s: float = Field(
        5, gt=0, le=60, description="How long a platform has to answer an INVITE."
    )
    max_message_bytes: int = Field(
        65535, ge=4096, le=1_048_576, description="A larger SIP message is refused."
    )
    requests_per_s: float = Field(
        50,
        gt=0,
        le=100000,
        description="SIP requests per second taken from one address; "
        "more are dropped (a REGISTER flood), logged once a minute.",
    )
    platforms: list[GbPlatformConfig] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="after")
    def _ports_and_media_host(self) -> Gb28181Config:
        # The loader reports the same problems from the raw file, in one pass with every
        # field's own (config/loader.py): keep the two in step.
        if self.rtp_port_max < self.rtp_port_min:
            raise ValueError(RTP_RANGE_REVERSED)
        if self.enabled and self.media_host is None and self.listen in WILDCARD_HOSTS:
            raise ValueError(MEDIA_HOST_REQUIRED)
        for platform in self.platforms:
            if platform.device_id == self.sip_id:
                raise ValueError(own_sip_id(platform.id, platform.device_id))
        return self

    def advertised_media_host(self) -> str:
        """The address written into INVITEs for platforms to send video to."""
        return self.media_host or self.listen


CLUSTER_NEEDS_POSTGRESQL = "cluster.enabled needs database.url on PostgreSQL (nodes share it)"


class ClusterConfig(_Strict):
    """Several nodes sharing one PostgreSQL database: cameras are shared out by leases there
    (see README "Many nodes"). Off: one node holds every camera."""

    enabled: bool = Field(False, description="Run as one node of several.")
    node_id: Identifier | None = Field(
        None, description="This node's id, unique among the nodes (required when enabled)."
    )
    url: str | None = Field(
        None,
        pattern=r"^https?://[^\s/?#@]+(?::[0-9]{1,5})?/?$",
        max_length=300,
        description="The URL other nodes and browsers reach this node by, e.g. "
        "http://node-a.example:8080 (required when enabled; no path, no credentials).",
    )
    capacity: float = Field(
        1.0,
        gt=0,
        le=1000,
        description="This node's share of the cameras relative to the others' (2 takes "
        "twice what 1 does).",
    )
    lease_s: float = Field(
        10.0,
        ge=3,
        le=120,
        description="How long a camera's lease lasts unless renewed: the longest a dead "
        "node's cameras wait before another node takes them.",
    )
    renew_s: float = Field(
        3.0,
        ge=0.5,
        le=40,
        description="How often a node renews its leases and looks at the others.",
    )
    shared_dir: Path | None = Field(
        None,
        description="A directory every node reads and writes (evidence, alarm clips, "
        "recordings); relative to the config file. Required when enabled.",
    )

    @field_validator("url")
    @classmethod
    def _port_in_range(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                port = urlsplit(value).port  # ValueError above 65535
            except ValueError:
                port = 0
            if port == 0:
                raise ValueError("the port must be 1 to 65535")
        return value

    def host(self) -> str | None:
        """The host name of ``url``, lower case, without brackets."""
        return urlsplit(self.url).hostname if self.url else None

    @model_validator(mode="after")
    def _complete(self) -> ClusterConfig:
        if self.renew_s * 2 >= self.lease_s:
            raise ValueError(
                "renew_s must be under half of lease_s: one lost renewal must not lose a lease"
            )
        if self.enabled:
            missing = [
                name for name in ("node_id", "url", "shared_dir") if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(f"cluster.enabled needs {', '.join(missing)}")
        return self


class OnvifDiscoveryConfig(_Strict):
    """How hard a discovery run may knock on the network, and how long it may take."""

    probes_per_s: float = Field(
        200.0, gt=0, le=10_000, description="Unicast WS-Discovery probes sent per second."
    )
    time_limit_s: float = Field(
        30.0, gt=0, le=600, description="A run ends by then, answered or not."
    )
    answer_wait_s: float = Field(
        2.0, gt=0, le=30, description="How long answers are awaited after the last probe."
    )
    max_hosts: int = Field(4096, ge=1, le=65_536, description="Addresses one run may probe.")
    inspect_timeout_s: float = Field(
        5.0, gt=0, le=60, description="Per device: its answers to the inspection's requests."
    )
    inspect_concurrency: int = Field(
        16, ge=1, le=256, description="Devices inspected at the same time."
    )


class OnvifConfig(_Strict):
    discovery: OnvifDiscoveryConfig = Field(default_factory=OnvifDiscoveryConfig)
    request_timeout_s: float = Field(
        5.0, gt=0, le=60, description="An ONVIF request to a camera fails after this."
    )
    clock_check_s: float = Field(
        300.0, ge=10, le=86_400, description="How often each camera's clock is read."
    )
    clock_offset_warn_s: float = Field(
        2.0, gt=0, le=86_400, description="A camera clock further off than this is flagged."
    )


class PtzConfig(_Strict):
    lease_s: float = Field(
        30.0,
        ge=5,
        le=3600,
        description="An operator's hold on a camera's control, renewed by each command.",
    )
    idle_home_s: float = Field(
        120.0,
        ge=0,
        le=86_400,
        description="After this long without a command the camera returns home; 0: never.",
    )
    move_timeout_s: float = Field(
        1.0,
        ge=0.2,
        le=10,
        description="A continuous move stops by itself this long after its last refresh.",
    )


class AppConfig(_Strict):
    server: ServerConfig = Field(default_factory=ServerConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    tags: list[TagConfig] = Field(default_factory=list, description="Extra zone tags.")
    platforms: list[PlatformConfig] = Field(default_factory=list)
    cameras: list[CameraConfig] = Field(default_factory=list)
    camera_files: list[Path] = Field(
        default_factory=list,
        description="CSV files of more cameras (one per row), relative to the config file.",
    )
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    recording: RecordingConfig = Field(default_factory=RecordingConfig)
    events: EventsConfig = Field(default_factory=EventsConfig)
    gb28181: Gb28181Config = Field(
        default_factory=Gb28181Config, description="GB/T 28181 platforms (SIP, PS over RTP)."
    )
    cluster: ClusterConfig = Field(
        default_factory=ClusterConfig, description="Several nodes over one PostgreSQL."
    )
    onvif: OnvifConfig = Field(
        default_factory=OnvifConfig, description="ONVIF discovery, requests and clocks."
    )
    ptz: PtzConfig = Field(
        default_factory=PtzConfig, description="Steering cameras: leases, idle return home."
    )

    def shared_root(self) -> Path:
        """Where files every node must read live: ``cluster.shared_dir`` in cluster mode
        (any node serves evidence, alarm clips and recordings another node wrote), else
        the data directory. Scratch files and the node's own key stay in the data
        directory either way."""
        if self.cluster.enabled and self.cluster.shared_dir is not None:
            return self.cluster.shared_dir
        return self.server.data_dir

    def recording_root(self) -> Path:
        """The directory of the recorded segments: ``recording.dir``, or recordings in
        the shared root (:meth:`shared_root`)."""
        return self.recording.dir or self.shared_root() / RECORDINGS_DIR
