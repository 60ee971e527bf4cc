"""What the GB/T 28181 store hands out: plain records of platforms, channels, overrides and
play sessions (no session or row leaves the store)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GbRegistration:
    """A successful REGISTER: where the platform is and until when."""

    platform_id: str
    device_id: str
    host: str
    port: int
    transport: str  # SIP transport: "udp" | "tcp"
    registered_at: float
    expires_at: float
    user_agent: str | None = None


@dataclass(frozen=True)
class GbPlatformRecord:
    platform_id: str
    device_id: str
    host: str
    port: int
    transport: str
    registered_at: float | None
    expires_at: float | None
    last_keepalive_at: float | None
    user_agent: str | None
    catalog_at: float | None
    channel_count: int

    def last_heard_at(self) -> float | None:
        """The later of the REGISTER and the last Keepalive: both prove it is alive."""
        times = [t for t in (self.registered_at, self.last_keepalive_at) if t is not None]
        return max(times) if times else None

    def online(self, now: float, keepalive_timeout_s: float) -> bool:
        """Registered (not expired, not de-registered) and heard of within the time-out
        (``keepalive_missed * keepalive_interval_s``, GB/T 28181-2016 s.9.6)."""
        heard = self.last_heard_at()
        return (
            self.expires_at is not None
            and self.expires_at > now
            and heard is not None
            and now - heard < keepalive_timeout_s
        )


@dataclass(frozen=True)
class GbChannelRecord:
    """A video channel of a platform's catalog; coordinates in WGS-84 (``longitude``,
    ``latitude``) and as sent (``raw_*``)."""

    platform_id: str
    channel_id: str
    name: str
    status: str | None = None
    civil_code: str | None = None
    parent_id: str | None = None
    business_group_id: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    address: str | None = None
    longitude: float | None = None
    latitude: float | None = None
    raw_longitude: float | None = None
    raw_latitude: float | None = None
    ptz_type: int | None = None
    updated_at: float = 0.0


@dataclass(frozen=True)
class GbChannelCounts:
    total: int
    online: int  # status not "OFF"


@dataclass(frozen=True)
class GbOverride:
    """An administrator's name and tags for a channel camera; None: the channel's own."""

    camera_id: str
    name: str | None
    tags: tuple[str, ...] | None
    updated_by: str
    updated_at: float


@dataclass(frozen=True)
class GbSessionRecord:
    """A stream being played: one INVITE dialog."""

    call_id: str
    camera_id: str
    platform_id: str
    transport: str  # GbTransport value
    local_port: int
    ssrc: str
    started_at: float
    # The dialog as JSON, for the BYE a restarted node sends (services/gb_dialog.py);
    # None for rows from before migration 0011.
    dialog: str | None = None
