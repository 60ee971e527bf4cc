"""The demo's ONVIF PTZ cameras: two simulated devices the wall steers and discovery finds.

Two simulated ONVIF PTZ cameras (SOAP device, media, PTZ and events services, WS-Discovery)
on addresses of their own: every 127.x.y.z is on the loopback, so they answer a discovery
of 127.0.90.0/24 as cameras on a LAN would. Their device service listens on 2020, the
ONVIF port of a common consumer PTZ line, rather than 80, which needs root.
"""

from __future__ import annotations

import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from surveillance.simulator.onvif_fleet import OnvifFleet
from surveillance.simulator.onvif_specs import OnvifDeviceSpec

DEMO_ONVIF_SUBNET = "127.0.90"
DEMO_ONVIF_HTTP_PORT = 2020
DEMO_ONVIF_WSD_PORT = 3702  # WS-Discovery 1.1 s.2.4; each device binds it on its address
DEMO_ONVIF_USER = "admin"
DEMO_ONVIF_PLATFORM = "town-cctv"
# (camera id, name, location scope, tags)
DEMO_ONVIF_CAMERAS = (
    ("ptz1", "Harbour entrance PTZ", "Harbour", ["traffic", "public-order"]),
    ("ptz2", "Ring road overpass PTZ", "Ring road", ["traffic"]),
)


@dataclass(frozen=True)
class DemoOnvif:
    """The ONVIF cameras' password, made for this run (kept out of repr: no log line or
    traceback shows it); the admin types it to discover them."""

    password: str = field(repr=False)
    http_port: int = DEMO_ONVIF_HTTP_PORT
    subnet: str = DEMO_ONVIF_SUBNET

    def addresses(self) -> list[str]:
        return [f"{self.subnet}.{n}" for n in range(1, len(DEMO_ONVIF_CAMERAS) + 1)]


def demo_onvif(subnet: str = DEMO_ONVIF_SUBNET) -> DemoOnvif:
    return DemoOnvif(password=secrets.token_urlsafe(12), subnet=subnet)


def loopback_subnet(value: str) -> str:
    """``127.y.z`` (``--onvif-subnet``): another demo on the machine may hold the default's
    ports (each camera needs UDP 3702 on its own address)."""
    octets = value.split(".")
    if not (len(octets) == 3 and octets[0] == "127" and all(o.isdigit() and int(o) < 256
                                                            for o in octets)):  # fmt: skip
        raise ValueError(f"{value!r} is not a loopback subnet like 127.0.90")
    return value


def demo_onvif_fleet(onvif: DemoOnvif, scene_dir: Path) -> OnvifFleet:
    """The simulated devices, not started (a context manager starts them); their pictures
    are views of a scene written to ``scene_dir``."""
    specs = [
        OnvifDeviceSpec(address=address, http_port=onvif.http_port, username=DEMO_ONVIF_USER,
                        password=onvif.password, name=name, location=location)
        for address, (_, name, location, _) in zip(onvif.addresses(), DEMO_ONVIF_CAMERAS,
                                                    strict=True)
    ]  # fmt: skip
    return OnvifFleet(specs, scene_dir=scene_dir)


def demo_onvif_cameras(fleet: OnvifFleet, onvif: DemoOnvif) -> list[dict[str, Any]]:
    """The running fleet's devices as catalog cameras with their ``onvif`` section, so the
    wall can steer them (credentials on the camera: the stream and ONVIF both use them)."""
    cameras = []
    for device, (camera_id, name, _, tags) in zip(fleet.devices, DEMO_ONVIF_CAMERAS, strict=True):
        cameras.append(
            {
                "id": camera_id,
                "name": f"{name} ({camera_id})",
                "platform": DEMO_ONVIF_PLATFORM,
                "url": device.spec.rtsp_main,
                "sub_url": device.spec.rtsp_sub,
                "username": DEMO_ONVIF_USER,
                "password": onvif.password,
                "tags": tags,
                "onvif": {"url": device.url},
            }
        )
    return cameras


def demo_onvif_line(onvif: DemoOnvif) -> str:
    """What the demo prints so the admin can try discovery (a printed line, not a log
    line: the log's redactor masks the password)."""
    first, *_, last = onvif.addresses()
    return (
        f"demo: ONVIF PTZ cameras on {first}-{last.rsplit('.', 1)[1]}: discover "
        f"{onvif.subnet}.0/24 as {DEMO_ONVIF_USER} with password {onvif.password}"
    )


def onvif_ports_busy(onvif: DemoOnvif) -> list[str]:
    """``address:port/proto`` of the devices' ports another program holds now: the device
    service (TCP, bound as aiohttp binds it, SO_REUSEADDR) and WS-Discovery (UDP)."""
    busy = []
    for address in onvif.addresses():
        for kind, port in ((socket.SOCK_STREAM, onvif.http_port),
                           (socket.SOCK_DGRAM, DEMO_ONVIF_WSD_PORT)):  # fmt: skip
            with socket.socket(socket.AF_INET, kind) as probe:
                if kind == socket.SOCK_STREAM:
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((address, port))
                except OSError:
                    busy.append(
                        f"{address}:{port}/{'tcp' if kind == socket.SOCK_STREAM else 'udp'}"
                    )
    return busy
