"""The SOAP side of a simulated ONVIF device: read a request safely, check its WS-Security
UsernameToken, write answers and faults.

Requests come from the network, so they are parsed with entities left unresolved, no
network access and no huge-tree mode (a hostile client gets a fault, not a resolved
``file://`` entity or an expanded bomb). Answers are built as lxml elements with the ONVIF
namespaces declared once on the envelope (ONVIF Core 2.x, 5.1: SOAP 1.2 over HTTP).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lxml import etree  # type: ignore[import-untyped]

NS = {
    "env": "http://www.w3.org/2003/05/soap-envelope",
    "ter": "http://www.onvif.org/ver10/error",
    "tt": "http://www.onvif.org/ver10/schema",
    "tds": "http://www.onvif.org/ver10/device/wsdl",
    "trt": "http://www.onvif.org/ver10/media/wsdl",
    "tptz": "http://www.onvif.org/ver20/ptz/wsdl",
    "tev": "http://www.onvif.org/ver10/events/wsdl",
    "wsnt": "http://docs.oasis-open.org/wsn/b-2",
    "wstop": "http://docs.oasis-open.org/wsn/t-1",
    "wsa": "http://www.w3.org/2005/08/addressing",
    "tns1": "http://www.onvif.org/ver10/topics",
    "wsse": ("http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"),
    "wsu": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd",
}
_WSS_UT_PROFILE = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
)
PASSWORD_DIGEST = _WSS_UT_PROFILE + "#PasswordDigest"
# ONVIF Core 5.12.2 leaves the window to the device; five minutes is what cameras use.
TEXT_PREFIXES = ("env", "ter", "tt", "tns1", "wsnt", "wstop")
CREATED_WINDOW = timedelta(minutes=5)
MAX_REQUEST_BYTES = 256 * 1024  # no ONVIF request this simulator answers comes near

_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False, dtd_validation=False
)


class SoapRequestError(Exception):
    """The request is not a SOAP envelope we can read (answered with env:Sender)."""


class SoapFault(Exception):
    """Answered as a SOAP fault with this HTTP status, code and subcode chain."""

    def __init__(self, status: int, code: str, subcode: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.code, self.subcode, self.reason = status, code, subcode, reason


def invalid(reason: str) -> SoapFault:
    return SoapFault(400, "env:Sender", "ter:InvalidArgVal", reason)


def float_attr(element: etree._Element | None, name: str) -> float | None:
    if element is None:
        return None
    value = element.get(name)
    try:
        number = None if value is None else float(value)
    except ValueError:
        raise invalid(f"{name} is not a number") from None
    if number is not None and not math.isfinite(number):
        raise invalid(f"{name} is not finite")  # float() takes "NaN" and "INF"
    return number


@dataclass(frozen=True)
class SoapRequest:
    header: etree._Element | None
    operation: etree._Element  # the first child of Body
    pullpoint: str | None = None  # the subscription number of a /onvif/pullpoint/<n> request

    @property
    def name(self) -> str:
        return str(etree.QName(self.operation).localname)

    @property
    def namespace(self) -> str:
        return str(etree.QName(self.operation).namespace or "")


def parse_request(body: bytes) -> SoapRequest:
    if len(body) > MAX_REQUEST_BYTES:
        raise SoapRequestError("request too large")
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        # SOAP 1.2 part 1, 5: a SOAP message must not contain a DTD.
        raise SoapRequestError("a DTD in a SOAP request")
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise SoapRequestError(f"not XML: {exc}") from None
    if root.tag != q("env:Envelope"):
        raise SoapRequestError("not a SOAP 1.2 envelope")
    header = root.find(q("env:Header"))
    body_el = root.find(q("env:Body"))
    operation = None if body_el is None else next(iter(body_el), None)
    if operation is None or not isinstance(operation.tag, str):
        raise SoapRequestError("an empty SOAP body")
    return SoapRequest(header, operation)


def q(name: str) -> str:
    """'tt:Name' -> '{http://www.onvif.org/ver10/schema}Name'."""
    prefix, local = name.split(":", 1)
    return f"{{{NS[prefix]}}}{local}"


def el(name: str, *children: etree._Element | str | None, **attrs: str) -> etree._Element:
    """An element named 'prefix:Local' with children (elements, or a string as its text;
    None is left out) and attributes."""
    element = etree.Element(q(name), nsmap=NS)
    for key, value in attrs.items():
        element.set(key, value)
    for child in children:
        if child is None:
            continue
        if isinstance(child, str):
            element.text = child
        else:
            element.append(child)
    return element


def text(element: etree._Element | None, path: str) -> str | None:
    """Text of the first descendant at 'prefix:A/prefix:B' (None if missing)."""
    if element is None:
        return None
    found = element.find("/".join(q(part) for part in path.split("/")), None)
    if found is None or found.text is None:
        return None
    return str(found.text).strip()


def find(element: etree._Element | None, path: str) -> etree._Element | None:
    if element is None:
        return None
    return element.find("/".join(q(part) for part in path.split("/")), None)


def envelope(*body: etree._Element, header: etree._Element | None = None) -> bytes:
    root = el("env:Envelope", el("env:Header", header) if header is not None else None)
    root.append(el("env:Body", *body))
    # Prefixes used only inside text (fault subcodes, event topics) must stay declared.
    etree.cleanup_namespaces(root, top_nsmap=NS, keep_ns_prefixes=TEXT_PREFIXES)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def fault(code: str, subcode: str, reason: str) -> bytes:
    """A SOAP 1.2 fault; code "env:Sender" or "env:Receiver", subcode e.g. "ter:NotAuthorized"
    or a chain "ter:InvalidArgVal/ter:NoProfile" (ONVIF Core 5.11.2: nested Subcodes)."""
    nested = None
    for value in reversed(subcode.split("/")):
        nested = el("env:Subcode", el("env:Value", value), nested)
    return envelope(
        el(
            "env:Fault",
            el("env:Code", el("env:Value", code), nested),
            el(
                "env:Reason",
                el("env:Text", reason, **{"{http://www.w3.org/XML/1998/namespace}lang": "en"}),
            ),
        )
    )


def username_token_ok(
    header: etree._Element | None, username: str, password: str, device_now: datetime
) -> bool:
    """WS-Security UsernameToken Profile 1.0, 3.1: digest = Base64(SHA-1(nonce + created +
    password)), Created within CREATED_WINDOW of the device's clock (not the caller's)."""
    token = find(header, "wsse:Security/wsse:UsernameToken")
    if token is None:
        return False
    password_el = find(token, "wsse:Password")
    name = text(token, "wsse:Username")
    created_text = text(token, "wsu:Created")
    nonce_text = text(token, "wsse:Nonce")
    if password_el is None or name is None or created_text is None or nonce_text is None:
        return False
    if password_el.get("Type", PASSWORD_DIGEST) != PASSWORD_DIGEST:
        return False  # plain-text passwords are refused: digest only, as the spec says
    try:
        created = datetime.fromisoformat(created_text.replace("Z", "+00:00"))
        nonce = base64.b64decode(nonce_text, validate=True)
    except ValueError:
        return False
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    if abs(created - device_now) > CREATED_WINDOW:
        return False
    expected = base64.b64encode(
        hashlib.sha1(nonce + created_text.encode() + password.encode()).digest()  # noqa: S324
    ).decode()
    given = (password_el.text or "").strip()
    return hmac.compare_digest(name, username) and hmac.compare_digest(given, expected)


def xs_duration_s(value: str | None) -> float | None:
    """Seconds of an xs:duration such as 'PT10S', 'PT1.5S', 'PT1M', 'P0DT0H0M2S' (days, hours,
    minutes, seconds; years and months are not used by ONVIF timeouts). None if unreadable."""
    if not value or not value.startswith("P"):
        return None
    total = 0.0
    number = ""
    in_time = False
    units = {"D": 86400.0, "H": 3600.0, "S": 1.0}
    for char in value[1:]:
        if char == "T":
            in_time = True
        elif char.isdigit() or char == ".":
            number += char
        elif number and (char in units or char == "M"):
            factor = 60.0 if char == "M" and in_time else units.get(char)
            if factor is None:
                return None
            total += float(number) * factor
            number = ""
        else:
            return None
    return None if number else total


def xs_duration(seconds: float) -> str:
    return f"PT{seconds:g}S"


def xs_datetime(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
