"""MANSCDP bodies (GB/T 28181-2016 Annex A): read the XML a lower platform sends in SIP
MESSAGE/NOTIFY requests, and write the few bodies this service sends it.

The bodies come from the network, so reading is defensive: defusedxml refuses a DOCTYPE and
with it every entity declaration and external reference (billion laughs, XXE), the number of
tags is capped before parsing, and numbers are read strictly (ASCII digits only: Python's
int() would also take "1_000" or Arabic-Indic digits). What is wrong with one catalog item (a
longitude out of range, a PTZType that is not one) costs that field, not the whole catalog;
what is wrong with the message itself (no SN, a SumNum that is not a number, more than
MAX_ITEMS items) raises ManscdpError saying what. Logging is the caller's: it knows the peer
and rate-limits. Which encoding the bytes are in is manscdp_text's question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import escape

from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import DefusedXMLParser

from surveillance.gb28181.manscdp_text import ManscdpError, decode_body

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_ITEMS",
    "AlarmNotify",
    "CatalogAnswer",
    "CatalogItem",
    "CatalogNotify",
    "Keepalive",
    "Manscdp",
    "ManscdpError",
    "OtherBody",
    "alarm_response",
    "catalog_query",
    "catalog_subscribe_body",
    "device_control",
    "parse_body",
]

MAX_BODY_BYTES = 1_048_576  # the largest SIP message the config allows (max_message_bytes)
MAX_ITEMS = 1000  # <Item> per message; platforms page far below this (WVP-PRO asks for 20s)
# An Item has about 20 fields (two tags each) plus Info's: room for MAX_ITEMS of them with
# vendors' extra fields, and not for a body of nothing but empty elements.
MAX_TAGS = MAX_ITEMS * 50 + 100
MAX_TEXT_CHARS = 200  # a name, address or description longer than this is cut: it is shown only

ROOTS = frozenset({"Notify", "Response", "Query", "Control"})  # GB/T 28181-2016 Annex A.2
ITEM_EVENTS = frozenset({"ON", "OFF", "VLOST", "DEFECT", "ADD", "DEL", "UPDATE"})  # A.2.5 Event
# Annex A says ON/OFF; some platforms write ONLINE/OFFLINE, which mean the same.
STATUS_WORDS = {"ON": "ON", "ONLINE": "ON", "OFF": "OFF", "OFFLINE": "OFF"}

_ID = re.compile(r"[0-9]{2,20}")  # Annex D codes: civil codes 2-8 digits, devices 20
_NUMBER = re.compile(r"[0-9]{1,18}")
_DECIMAL = re.compile(r"[+-]?[0-9]{1,3}(\.[0-9]{1,20})?")


@dataclass(frozen=True)
class CatalogItem:
    """One <Item> of a catalog answer (Annex A.2.6): a channel, or a group (business group, virtual
    organisation, civil code) the channels hang under. Coordinates as the platform sent them
    (range-checked, not converted: coords.py does that when the platform says gcj02)."""

    device_id: str
    name: str
    status: str | None  # "ON" / "OFF"
    event: str | None  # NOTIFY only: ON/OFF/VLOST/DEFECT/ADD/DEL/UPDATE
    civil_code: str | None
    parent_id: str | None
    business_group_id: str | None
    manufacturer: str | None
    model: str | None
    address: str | None
    longitude: float | None
    latitude: float | None
    ptz_type: int | None  # 1 dome, 2 half-dome, 3 fixed, 4 remote-controlled fixed
    parental: bool  # it has children of its own (an NVR, a group)


@dataclass(frozen=True)
class Keepalive:
    sn: int
    device_id: str
    status: str  # "OK" normally; as sent


@dataclass(frozen=True)
class CatalogAnswer:
    """A page of the answer to a Catalog query (<Response>): SumNum is the whole catalog's
    size, the pages together carry that many items. ``skipped``: items of this page dropped
    as unusable (no valid DeviceID); count them towards SumNum when assembling."""

    sn: int
    device_id: str
    sum_num: int
    items: tuple[CatalogItem, ...]
    skipped: int = 0


@dataclass(frozen=True)
class CatalogNotify:
    """A catalog change (<Notify>, A.2.5 / s.9.11): each item carries its Event."""

    sn: int
    device_id: str
    sum_num: int
    items: tuple[CatalogItem, ...]
    skipped: int = 0


@dataclass(frozen=True)
class AlarmNotify:
    """An alarm (A.2.5 Alarm notify, s.9.4): priority 1 (highest) to 4, method 1 telephone,
    2 device, 3 SMS, 4 GPS, 5 video analysis, 6 device fault, 7 other."""

    sn: int
    device_id: str
    priority: int | None
    method: int | None
    alarm_type: int | None
    time: str | None
    description: str | None
    longitude: float | None
    latitude: float | None


@dataclass(frozen=True)
class OtherBody:
    """A well-formed body of a kind not read further (DeviceInfo, DeviceStatus, RecordInfo,
    a Response to our DeviceControl...): enough to log it and answer 200."""

    root: str
    cmd_type: str
    sn: int | None
    device_id: str | None


Manscdp = Keepalive | CatalogAnswer | CatalogNotify | AlarmNotify | OtherBody


def parse_body(body: bytes) -> Manscdp:
    """Read one MANSCDP body; raises ManscdpError saying what is wrong with it."""
    if len(body) > MAX_BODY_BYTES:
        raise ManscdpError(f"body of {len(body)} bytes is over {MAX_BODY_BYTES}")
    root = _parse_xml(decode_body(body))
    if root.tag not in ROOTS:
        raise ManscdpError(f"unknown root element {_quote(root.tag)}")
    cmd_type = _text(root, "CmdType")
    if cmd_type is None:
        raise ManscdpError(f"<{root.tag}> without CmdType")
    kind = (root.tag, cmd_type)
    if kind == ("Notify", "Keepalive"):
        return Keepalive(
            sn=_required_number(root, "SN"),
            device_id=_required_id(root),
            status=_cut(_text(root, "Status") or "", 40),
        )
    if kind in (("Response", "Catalog"), ("Notify", "Catalog")):
        return _catalog(root, answer=root.tag == "Response")
    if kind == ("Notify", "Alarm"):
        return _alarm(root)
    sn_text = _text(root, "SN")
    device_id = _text(root, "DeviceID")
    return OtherBody(
        root=root.tag,
        cmd_type=_cut(cmd_type, 40),
        sn=int(sn_text) if sn_text and _NUMBER.fullmatch(sn_text) else None,
        device_id=device_id if device_id and _ID.fullmatch(device_id) else None,
    )


def catalog_query(sn: int, device_id: str) -> bytes:
    """<Query> Catalog (A.2.4, s.9.5): ask the platform for its whole catalog."""
    return _body("Query", "Catalog", sn, device_id)


def catalog_subscribe_body(sn: int, device_id: str) -> bytes:
    """The body of a SUBSCRIBE (Event: Catalog) (s.9.11): the same query, standing."""
    return _body("Query", "Catalog", sn, device_id)


def device_control(sn: int, device_id: str, ptz_cmd: str) -> bytes:
    """<Control> DeviceControl with a PTZCmd (A.2.3, s.9.3; the command from ptz.py)."""
    if not re.fullmatch(r"[0-9A-F]{16}", ptz_cmd):
        raise ValueError("a PTZCmd is 16 upper-case hex digits (8 bytes, A.3)")
    return _body("Control", "DeviceControl", sn, device_id, [("PTZCmd", ptz_cmd)])


def alarm_response(sn: int, device_id: str) -> bytes:
    """<Response> Alarm, Result OK (A.2.6, s.9.4): the answer the platform waits for."""
    return _body("Response", "Alarm", sn, device_id, [("Result", "OK")])


def _body(
    root: str, cmd_type: str, sn: int, device_id: str, extra: list[tuple[str, str]] | None = None
) -> bytes:
    if not 0 <= sn < 10**18:
        raise ValueError(f"SN {sn} out of range")
    if not _ID.fullmatch(device_id):
        raise ValueError("a DeviceID is 2-20 digits (GB/T 28181-2016 Annex D)")
    fields = [("CmdType", cmd_type), ("SN", str(sn)), ("DeviceID", device_id), *(extra or [])]
    lines = [f"<{name}>{escape(value)}</{name}>" for name, value in fields]
    # Declared GB2312 as platforms expect (Annex A's examples); written as GB18030, its
    # superset, which is the same bytes for everything GB2312 has.
    text = '<?xml version="1.0" encoding="GB2312"?>\r\n' + f"<{root}>\r\n"
    text += "".join(line + "\r\n" for line in lines) + f"</{root}>\r\n"
    return text.encode("gb18030")


def _parse_xml(text: str) -> Element:
    # Every element costs at least one "<": counting them bounds the tree before memory is
    # spent on it. Depth needs no limit: the tree is built and freed without recursion, and
    # nothing here looks more than four levels down.
    tags = text.count("<")
    if tags > MAX_TAGS:
        raise ManscdpError(f"{tags} tags, more than {MAX_TAGS}")
    parser = DefusedXMLParser(forbid_dtd=True, forbid_entities=True, forbid_external=True)
    try:
        parser.feed(text)
        root: Element = parser.close()
    except DTDForbidden:
        # Entity declarations (billion laughs) and external entities (XXE) can only be
        # declared in a DTD, so refusing the DOCTYPE refuses them all; Annex A has none.
        raise ManscdpError("a DOCTYPE is refused (entities and external references)") from None
    except EntitiesForbidden:
        raise ManscdpError("an entity declaration is refused") from None
    except ExternalReferenceForbidden:
        raise ManscdpError("an external reference is refused") from None
    except ParseError as exc:
        # expat's message: what and where (line, column), never the input itself
        raise ManscdpError(f"malformed XML: {exc}") from None
    return root


def _catalog(root: Element, *, answer: bool) -> CatalogAnswer | CatalogNotify:
    sn = _required_number(root, "SN")
    device_id = _required_id(root)
    device_list = root.find("DeviceList")
    elements = device_list.findall("Item") if device_list is not None else []
    if len(elements) > MAX_ITEMS:
        raise ManscdpError(f"{len(elements)} items in one message, more than {MAX_ITEMS}")
    items = tuple(item for item in map(_item, elements) if item is not None)
    skipped = len(elements) - len(items)
    if answer:
        # Needed to know when the pages are complete (A.2.6); a notify may leave it out.
        sum_num = _required_number(root, "SumNum")
        return CatalogAnswer(sn, device_id, sum_num, items, skipped)
    sum_num = _required_number(root, "SumNum") if _text(root, "SumNum") else len(elements)
    return CatalogNotify(sn, device_id, sum_num, items, skipped)


def _item(element: Element) -> CatalogItem | None:
    device_id = _text(element, "DeviceID")
    if device_id is None or not _ID.fullmatch(device_id):
        return None  # nothing to file it under
    status = _text(element, "Status")
    event = _text(element, "Event")
    return CatalogItem(
        device_id=device_id,
        name=_cut(_text(element, "Name") or "", MAX_TEXT_CHARS),
        status=STATUS_WORDS.get(status.upper()) if status else None,
        event=event.upper() if event and event.upper() in ITEM_EVENTS else None,
        civil_code=_optional_id(element, "CivilCode"),
        parent_id=_optional_id(element, "ParentID"),
        business_group_id=_optional_id(element, "BusinessGroupID"),
        manufacturer=_optional_text(element, "Manufacturer"),
        model=_optional_text(element, "Model"),
        address=_optional_text(element, "Address"),
        longitude=_coordinate(element, "Longitude", 180.0),
        latitude=_coordinate(element, "Latitude", 90.0),
        ptz_type=_here_or_in_info(element, "PTZType", 1, 4),
        parental=_text(element, "Parental") == "1",
    )


def _alarm(root: Element) -> AlarmNotify:
    return AlarmNotify(
        sn=_required_number(root, "SN"),
        device_id=_required_id(root),
        priority=_small_int(root, "AlarmPriority", 1, 4),
        method=_small_int(root, "AlarmMethod", 1, 7),
        alarm_type=_here_or_in_info(root, "AlarmType", 0, 999),
        time=_optional_text(root, "AlarmTime", 40),
        description=_optional_text(root, "AlarmDescription"),
        longitude=_coordinate(root, "Longitude", 180.0),
        latitude=_coordinate(root, "Latitude", 90.0),
    )


def _text(parent: Element, name: str) -> str | None:
    """A direct child's text, stripped; None when absent or empty."""
    child = parent.find(name)
    if child is None or child.text is None:
        return None
    return child.text.strip() or None


def _optional_text(parent: Element, name: str, limit: int = MAX_TEXT_CHARS) -> str | None:
    text = _text(parent, name)
    return _cut(text, limit) if text is not None else None


def _optional_id(parent: Element, name: str) -> str | None:
    text = _text(parent, name)
    return text if text is not None and _ID.fullmatch(text) else None


def _required_id(root: Element) -> str:
    text = _text(root, "DeviceID")
    if text is None:
        raise ManscdpError("no DeviceID")
    if not _ID.fullmatch(text):
        raise ManscdpError(f"DeviceID {_quote(text)} is not 2-20 digits")
    return text


def _required_number(root: Element, name: str) -> int:
    text = _text(root, name)
    if text is None:
        raise ManscdpError(f"no {name}")
    if not _NUMBER.fullmatch(text):
        raise ManscdpError(f"{name} {_quote(text)} is not a number")
    return int(text)


def _small_int(parent: Element, name: str, low: int, high: int) -> int | None:
    text = _text(parent, name)
    if text is None or not _NUMBER.fullmatch(text):
        return None
    value = int(text)
    return value if low <= value <= high else None


def _here_or_in_info(parent: Element, name: str, low: int, high: int) -> int | None:
    """2016 puts PTZType and AlarmType under <Info>; many platforms (a 2011 habit) put them
    beside the other fields. Either is read."""
    value = _small_int(parent, name, low, high)
    info = parent.find("Info")
    if value is None and info is not None:
        value = _small_int(info, name, low, high)
    return value


def _coordinate(parent: Element, name: str, limit: float) -> float | None:
    """A longitude (limit 180) or latitude (90) in degrees; None when absent, not a plain
    decimal (no exponents, NaN or infinities) or out of range: that item has no position."""
    text = _text(parent, name)
    if text is None or not _DECIMAL.fullmatch(text):
        return None
    value = float(text)
    return value if -limit <= value <= limit else None


def _cut(text: str, limit: int) -> str:
    return text[:limit]


def _quote(text: str) -> str:
    """Part of a value for an error message: enough to recognise, never a whole payload."""
    return repr(text[:40] + ("..." if len(text) > 40 else ""))
