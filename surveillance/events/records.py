"""What the rest of the service sees of events: plain frozen records, no rows, no sessions.

Times are unix seconds of the wall clock (the API turns them into ISO 8601).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

MAX_PAGE = 500  # events in one answer of a search


class EventType(StrEnum):
    CAMERA_OFFLINE = "camera.offline"
    CAMERA_STALLED = "camera.stalled"
    PLATFORM_OFFLINE = "platform.offline"  # a storm of camera events, collapsed
    QUALITY_FROZEN = "quality.frozen"
    QUALITY_DARK = "quality.dark"
    QUALITY_BRIGHT = "quality.bright"
    QUALITY_COVERED = "quality.covered"
    QUALITY_DEFOCUS = "quality.defocus"
    QUALITY_ONE_COLOUR = "quality.one_colour"
    QUALITY_MOVED = "quality.moved"
    QUALITY_FRAME_RATE = "quality.frame_rate"
    ZONE_MOTION = "zone.motion"
    DEVICE_ALARM = "device.alarm"  # GB/T 28181 platforms' device alarms
    DEVICE_MOTION = "device.motion"  # a camera's own motion detection (ONVIF events)
    DEVICE_TAMPER = "device.tamper"  # a camera's own tamper detection (ONVIF events)
    CAMERA_CLOCK = "camera.clock"  # an ONVIF camera's clock off the server's by too much
    NODE_RUNNING = "node.running"  # the node's own up-time (availability); never on the wall


class Severity(StrEnum):
    """alarm pins the wall and sounds; warning marks the tile and the list; info: list only."""

    INFO = "info"
    WARNING = "warning"
    ALARM = "alarm"


SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ALARM: 2}


class EventState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"


@dataclass(frozen=True)
class EventSpec:
    """A condition someone raises: what it is, where, and the key that makes it one event."""

    type: EventType
    severity: Severity
    key: str  # e.g. "quality.black:cam07", "motion:cam07:12", "camera.offline:cam07"
    summary: str
    camera_id: str | None = None
    platform_id: str | None = None
    zone_id: int | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)  # stored as JSON
    at: float | None = None  # wall time; None: now


@dataclass(frozen=True)
class EventPicture:
    """The picture an event carries: what the camera showed when it was raised."""

    jpeg: bytes
    width: int
    height: int
    captured_at: float


@dataclass(frozen=True)
class EventRecord:
    id: int
    type: str  # an EventType when this code wrote it; kept as text when read back
    severity: Severity
    camera_id: str | None
    platform_id: str | None
    zone_id: int | None
    key: str
    summary: str
    detail: Mapping[str, Any]
    state: EventState
    started_at: float
    last_seen_at: float
    ended_at: float | None
    updated_at: float
    acked_by: str | None
    acked_at: float | None
    closed_by: str | None
    closed_at: float | None
    note: str | None
    case_number: str | None
    parent_id: int | None  # the platform event this camera event was collapsed into
    has_snapshot: bool

    @property
    def active(self) -> bool:
        """The condition still holds (it may be acknowledged already)."""
        return self.ended_at is None


@dataclass(frozen=True)
class EventFilter:
    """Which events a search returns, newest first. ``camera_ids`` is the caller's scope
    (None: every camera); events without a camera (platform events) pass the scope when
    ``platform_ids`` holds their platform."""

    camera_ids: Collection[str] | None = None
    platform_ids: Collection[str] | None = None  # scope of camera-less events
    camera_id: str | None = None
    platform_id: str | None = None
    types: Collection[str] | None = None
    severity: Severity | None = None  # this and more severe
    states: Collection[EventState] | None = None
    active: bool | None = None
    since: float | None = None  # started_at >= since
    until: float | None = None  # started_at < until
    include_children: bool = False  # camera events folded under a platform event
    limit: int = 100
    before_id: int | None = None  # paging: events with a smaller id

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_PAGE:
            raise ValueError(f"limit must be 1..{MAX_PAGE}")


@dataclass(frozen=True)
class EventPage:
    events: tuple[EventRecord, ...]
    next_before_id: int | None  # pass as before_id for the next page; None: no more
