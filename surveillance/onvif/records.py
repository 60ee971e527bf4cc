"""What discovery finds and what a device says of itself: plain frozen records.

Stream URIs here never carry credentials (a device returns them without; the service adds
the camera's own when it connects); they may be shown to an administrator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

FoundBy = Literal["multicast", "unicast"]


@dataclass(frozen=True)
class DiscoveredDevice:
    """One WS-Discovery ProbeMatch: an endpoint and where its device service answers."""

    address: str  # the IP address the ProbeMatch came from
    endpoint: str  # its EndpointReference address (urn:uuid:...): stable across runs
    xaddrs: tuple[str, ...]  # device service URLs it advertised
    scopes: tuple[str, ...] = ()  # onvif://www.onvif.org/name/..., /hardware/..., /location/...
    found_by: FoundBy = "multicast"

    @property
    def device_url(self) -> str | None:
        """The first http(s) XAddr (where inspection and the catalog point)."""
        for xaddr in self.xaddrs:
            if xaddr.startswith(("http://", "https://")):
                return xaddr
        return None


@dataclass(frozen=True)
class MediaProfile:
    token: str
    name: str
    encoding: str | None  # "H264", "H265", "JPEG"...
    width: int | None
    height: int | None
    stream_uri: str | None  # rtsp://..., credentials never included
    ptz: bool  # the profile has a PTZ configuration


@dataclass(frozen=True)
class DeviceReport:
    """What inspecting one device gave: everything it said, or the outcome and reason why not.

    ``outcome`` is "ok" or an :class:`~surveillance.onvif.errors.OnvifError` ``outcome``
    ("unreachable", "timeout", "unauthorized", "malformed", "refused", "error")."""

    device_url: str
    outcome: str
    reason: str = ""  # for a person; never a credential
    endpoint: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    firmware: str | None = None
    serial: str | None = None
    name: str | None = None  # from its scopes (onvif://www.onvif.org/name/...)
    location: str | None = None  # from its scopes (/location/...)
    profiles: tuple[MediaProfile, ...] = ()
    main_uri: str | None = None  # the highest-resolution profile's stream
    sub_uri: str | None = None  # the lowest-resolution other profile's stream, if any
    ptz: bool = False
    clock_offset_s: float | None = None  # device UTC minus server UTC, at the request's midpoint
    found_by: str | None = None  # "multicast", "unicast", or None for a named address
    extra: dict[str, str] = field(default_factory=dict)  # hardware id etc., shown as is

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"
