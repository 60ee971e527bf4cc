"""How discovered devices stand against the catalog: new, same, changed, or gone.

A device is matched to a catalog camera by host: the camera's ``onvif`` device service host
first, else its stream's host. A device that could not be inspected is compared with
nothing: its status is its outcome ("timeout", "unauthorized"...), never "same". A camera
with ``onvif`` is "gone" when its host was in the run's reach (named in the targets, or on
a network the multicast probe went out on) and nothing answered from it (an address where
nothing accepts a connection did not answer). Stream URLs are compared without
credentials, and shown redacted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Literal
from urllib.parse import urlsplit

import ifaddr

from surveillance.catalog import Camera, Catalog
from surveillance.onvif.client import safe_url
from surveillance.onvif.records import DeviceReport

Comparison = Literal["new", "same", "changed"]
# A comparison, or for a device that could not be inspected its outcome (DeviceReport).
CatalogStatus = str
COMPARISONS: tuple[Comparison, ...] = ("new", "same", "changed")
_MAX_INTERFACES = 16


def local_networks(addresses: Sequence[str] | None = None) -> list[ipaddress.IPv4Interface]:
    """This machine's IPv4 interfaces (address and network), or those of ``addresses``
    (an address no interface has counts as a /32)."""
    found: dict[str, ipaddress.IPv4Interface] = {}
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str):
                found.setdefault(ip.ip, ipaddress.IPv4Interface(f"{ip.ip}/{ip.network_prefix}"))
    if addresses is None:
        return list(found.values())[:_MAX_INTERFACES]
    return [found.get(a) or ipaddress.IPv4Interface(f"{a}/32") for a in addresses]


def device_order(url: str) -> tuple[int, int, str, int, str]:
    """Sort key putting device URLs in address order (10.0.0.2 before 10.0.0.10), IPv4
    before IPv6, addresses before host names, then by port."""
    host = host_of(url)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return (2, 0, host, _port_of(url), url)
    return (0 if address.version == 4 else 1, int(address), "", _port_of(url), url)


def _port_of(url: str) -> int:
    try:
        return urlsplit(url).port or 0
    except ValueError:
        return 0


def host_of(url: str | None) -> str:
    if not url:
        return ""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def catalog_status(
    catalog: Catalog, report: DeviceReport
) -> tuple[CatalogStatus, str | None, tuple[str, ...]]:
    """(status, the matching camera's id, what differs) for one inspected device. A device
    that could not be inspected has its outcome as status (nothing was compared), with the
    id of the camera on its host if there is one."""
    host = host_of(report.device_url)
    camera = _camera_on(catalog.cameras.values(), host)
    if not report.ok:
        return report.outcome, camera.id if camera else None, ()
    if camera is None:
        return "new", None, ()
    changes: list[str] = []
    if camera.onvif is None:
        changes.append(f"not set up for ONVIF in the catalog (device service {report.device_url})")
    elif camera.onvif.url != report.device_url:
        changes.append(f"device service: {safe_url(camera.onvif.url)} -> {report.device_url}")
    if report.main_uri and _bare(camera.stream_url()) != report.main_uri:
        changes.append(f"main stream: {camera.display_url()} -> {report.main_uri}")
    if report.sub_uri and (
        not camera.has_sub_stream or _bare(camera.stream_url(sub=True)) != report.sub_uri
    ):
        changes.append(f"sub stream: {camera.display_url(sub=True) or 'none'} -> {report.sub_uri}")
    return ("changed" if changes else "same"), camera.id, tuple(changes)


def gone_cameras(
    catalog: Catalog,
    answered_hosts: Iterable[str],
    *,
    named: Iterable[str],
    networks: Sequence[ipaddress.IPv4Interface],
) -> list[str]:
    """Ids of the catalog's ONVIF cameras in the run's reach from whose host nothing
    answered."""
    answered = {host.lower() for host in answered_hosts}
    reach = {host.lower() for host in named}
    gone: list[str] = []
    for camera in catalog.cameras.values():
        if camera.onvif is None:
            continue
        host = host_of(camera.onvif.url)
        if host and host not in answered and (host in reach or _on(host, networks)):
            gone.append(camera.id)
    return gone


def _camera_on(cameras: Iterable[Camera], host: str) -> Camera | None:
    cameras = list(cameras)
    for camera in cameras:
        if camera.onvif is not None and host_of(camera.onvif.url) == host:
            return camera
    for camera in cameras:
        if host_of(camera.stream_url()) == host:
            return camera
    return None


def _bare(url: str) -> str:
    """``url`` without user name and password (compared, never shown)."""
    return safe_url(url)


def _on(host: str, networks: Sequence[ipaddress.IPv4Interface]) -> bool:
    try:
        address = ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return any(address in network.network for network in networks)
