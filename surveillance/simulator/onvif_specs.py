"""What a simulated ONVIF device is (its spec) and what it records (the commands it got)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

DEVICE_FAULTS = (
    "hostile-xml",  # every SOAP answer carries a DOCTYPE with an external entity and a bomb
    "malformed",  # answers are truncated, not XML
    "not-onvif",  # well-formed XML, but not a SOAP envelope ONVIF describes
    "hang",  # accepts the connection and never answers
    "slow",  # answers after SLOW_ANSWER_S
    "huge",  # an answer of HUGE_ANSWER_BYTES, streamed
    "wsd-hostile",  # its WS-Discovery ProbeMatch is a DOCTYPE bomb (SOAP is fine)
)
SLOW_ANSWER_S = 20.0
HUGE_ANSWER_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class OnvifDeviceSpec:
    address: str  # e.g. "127.0.77.3"; HTTP and WS-Discovery bind here
    http_port: int = 8080
    username: str = "admin"
    password: str = field(default="admin-pass", repr=False)
    name: str = "PTZ camera 3"  # scope onvif://www.onvif.org/name/<quoted>
    location: str = "Test range"  # scope .../location/<quoted>
    manufacturer: str = "Surveillance Sim"
    model: str = ""  # "" = "SimPTZ", or "SimFixed" when ptz is False
    firmware: str = "1.0.0"
    serial: str = ""  # "" = derived from the address
    ptz: bool = True
    events: bool = True  # events service + PullPoint
    clock_offset_s: float = 0.0  # device clock = server clock + this
    fault: str | None = None  # None or one of DEVICE_FAULTS
    rtsp_main: str = ""  # what GetStreamUri answers for Profile_1 (no credentials)
    rtsp_sub: str | None = None  # for Profile_2, or no second profile

    def __post_init__(self) -> None:
        if self.fault is not None and self.fault not in DEVICE_FAULTS:
            raise ValueError(f"unknown device fault {self.fault!r}; one of {DEVICE_FAULTS}")
        if not self.model:
            object.__setattr__(self, "model", "SimPTZ" if self.ptz else "SimFixed")
        if not self.serial:
            digits = "".join(
                f"{int(part):03d}" for part in self.address.split(".") if part.isdigit()
            )
            object.__setattr__(self, "serial", f"SIM{digits or self.address}")

    @property
    def base_url(self) -> str:
        return f"http://{self.address}:{self.http_port}"

    @property
    def url(self) -> str:
        return f"{self.base_url}/onvif/device_service"

    @property
    def endpoint_reference(self) -> str:
        """Stable across restarts (WS-Discovery 1.1, 2.5: an endpoint keeps its EPR)."""
        return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'onvif-sim:' + self.address)}"


@dataclass(frozen=True)
class DeviceCommand:
    at_monotonic: float
    operation: str
    args: dict[str, Any]
