"""MANSCDP bodies the simulated platform writes and the few it reads (GB/T 28181-2016 Annex A).

Written by hand, like a device's firmware does, declared GB2312 by default (what most
platforms send; the bytes are GB18030, its superset, so any name encodes) or UTF-8.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.sax.saxutils import escape

from defusedxml import ElementTree

MANSCDP = "Application/MANSCDP+xml"


@dataclass
class GbChannelSpec:
    """One channel of the simulated platform; ``clip`` names the video it plays (ps_mux.CLIPS)."""

    channel_id: str
    name: str
    clip: str = "h264"
    civil_code: str | None = None
    business_group_id: str | None = None
    longitude: float | None = None
    latitude: float | None = None
    status: str = "ON"
    parent_id: str | None = None  # None: the platform itself
    ptz_type: int | None = None  # GB/T 28181-2016 A.2.1.5: 1 dome, 2 half dome, 3 fixed...
    address: str | None = None  # where it is mounted, as the platform's operators wrote it


@dataclass(frozen=True)
class Request:
    """A MANSCDP body from the upper platform: root (Query / Control / ...), CmdType, SN."""

    root: str
    cmd_type: str
    sn: int
    device_id: str
    fields: dict[str, str]


def body(root: str, fields: list[tuple[str, str]], encoding: str, inner: str = "") -> bytes:
    declared = "GB2312" if encoding.upper() in ("GB2312", "GBK", "GB18030") else "UTF-8"
    text = "".join(f"<{name}>{escape(value)}</{name}>\n" for name, value in fields)
    xml = f'<?xml version="1.0" encoding="{declared}"?>\n<{root}>\n{text}{inner}</{root}>\n'
    return xml.encode("gb18030" if declared == "GB2312" else "utf-8")


def keepalive(sn: int, device_id: str, encoding: str) -> bytes:
    fields = [("CmdType", "Keepalive"), ("SN", str(sn)), ("DeviceID", device_id), ("Status", "OK")]
    return body("Notify", fields, encoding)


def catalog(
    root: str,
    sn: int,
    device_id: str,
    total: int,
    items: list[GbChannelSpec],
    encoding: str,
    event: str | None = None,
) -> bytes:
    """A Catalog Response page (root "Response") or a NOTIFY (root "Notify", with Event)."""
    rows = "".join(_item(device_id, item, event) for item in items)
    inner = f'<DeviceList Num="{len(items)}">\n{rows}</DeviceList>\n'
    fields = [
        ("CmdType", "Catalog"),
        ("SN", str(sn)),
        ("DeviceID", device_id),
        ("SumNum", str(total)),
    ]
    return body(root, fields, encoding, inner)


def _item(device_id: str, item: GbChannelSpec, event: str | None) -> str:
    fields = [("DeviceID", item.channel_id), ("Name", item.name)]
    if event:
        fields.append(("Event", event))
    fields += [
        ("Manufacturer", "Simulated"),
        ("Model", "GB-SIM"),
        ("Owner", "Owner"),
        ("CivilCode", item.civil_code or device_id[:6]),
        ("Address", item.address or ""),
        ("Parental", "0"),
        ("ParentID", item.parent_id or device_id),
        ("SafetyWay", "0"),
        ("RegisterWay", "1"),
        ("Secrecy", "0"),
        ("Status", item.status),
    ]
    if item.business_group_id:
        fields.append(("BusinessGroupID", item.business_group_id))
    if item.longitude is not None and item.latitude is not None:
        fields += [("Longitude", f"{item.longitude:.6f}"), ("Latitude", f"{item.latitude:.6f}")]
    text = "".join(f"<{name}>{escape(value)}</{name}>\n" for name, value in fields)
    if item.ptz_type is not None:
        text += f"<Info>\n<PTZType>{item.ptz_type}</PTZType>\n</Info>\n"
    return f"<Item>\n{text}</Item>\n"


def alarm(
    sn: int, channel_id: str, priority: int, method: int, description: str, encoding: str
) -> bytes:
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds")
    fields = [
        ("CmdType", "Alarm"),
        ("SN", str(sn)),
        ("DeviceID", channel_id),
        ("AlarmPriority", str(priority)),
        ("AlarmMethod", str(method)),
        ("AlarmTime", now),
        ("AlarmDescription", description),
    ]
    return body("Notify", fields, encoding)


def device_info(sn: int, device_id: str, channels: int, encoding: str) -> bytes:
    fields = [
        ("CmdType", "DeviceInfo"),
        ("SN", str(sn)),
        ("DeviceID", device_id),
        ("Result", "OK"),
        ("DeviceName", "GB simulator"),
        ("Manufacturer", "Simulated"),
        ("Model", "GB-SIM"),
        ("Firmware", "1.0"),
        ("Channel", str(channels)),
    ]
    return body("Response", fields, encoding)


def parse_request(data: bytes) -> Request:
    """Read a body from the upper platform; ValueError when it is not one. defusedxml refuses
    DTDs and entities."""
    declared = re.match(rb'<\?xml[^>]*encoding="([^"]+)"', data.lstrip())
    name = declared.group(1).decode("ascii", "replace").lower() if declared else "utf-8"
    text = data.decode("gb18030" if name.startswith("gb") else "utf-8", errors="replace")
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text)
    try:
        root = ElementTree.fromstring(text)
    except Exception as exc:  # defusedxml raises its own and ParseError
        raise ValueError(f"not MANSCDP XML: {type(exc).__name__}") from exc
    fields = {child.tag: (child.text or "").strip() for child in root}
    sn = fields.get("SN", "")
    return Request(
        root=root.tag,
        cmd_type=fields.get("CmdType", ""),
        sn=int(sn) if sn.isdigit() else 0,
        device_id=fields.get("DeviceID", ""),
        fields=fields,
    )
