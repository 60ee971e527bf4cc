"""SDP of a GB/T 28181 real-time play: the offer this service sends in an INVITE, and the
parts of the platform's answer it needs (where the video comes from, over what, which SSRC).

GB/T 28181-2016 Annex F: ``s=Play``, ``a=rtpmap:96 PS/90000``, ``y=`` the 10-digit SSRC.
RTP over TCP (RFC 4571 framing) is offered as ``TCP/RTP/AVP`` with ``a=setup`` and
``a=connection:new`` (RFC 4145): ``passive`` when we listen, ``active`` when we connect.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from surveillance.config.models import GbTransport
from surveillance.gb28181.sip_message import excerpt

MAX_SDP_BYTES = 16 * 1024
MAX_SDP_LINES = 200
PS_PAYLOAD_TYPE = 96
_SSRC = re.compile(r"[0-9]{10}")
_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?")
_NO_SPACE = re.compile(r"[^\s]+")
_SETUPS = frozenset({"active", "passive", "actpass", "holdconn"})
_TCP_PROTOS = frozenset({"TCP/RTP/AVP", "RTP/AVP/TCP"})  # the second: some platforms' spelling


@dataclass(frozen=True)
class SdpAnswer:
    host: str  # where the platform's RTP comes from / where we connect (tcp-active)
    port: int
    ssrc: str | None  # the answer's y=, None when it has none
    tcp: bool
    setup: str | None  # the answer's a=setup (active/passive/...), None when absent


def play_offer(
    *, sip_id: str, media_host: str, port: int, ssrc: str, transport: GbTransport
) -> str:
    """The SDP offer of an INVITE asking a platform for a channel's real-time video."""
    if not _NO_SPACE.fullmatch(sip_id):
        raise ValueError("sip_id must be one word")
    if not _SSRC.fullmatch(ssrc):
        raise ValueError("ssrc must be 10 digits")
    if not 1 <= port <= 65535:
        raise ValueError("port must be 1-65535")
    address_type = _address_type(media_host)
    tcp = transport is not GbTransport.UDP
    lines = [
        "v=0",
        f"o={sip_id} 0 0 IN {address_type} {media_host}",
        "s=Play",
        f"c=IN {address_type} {media_host}",
        "t=0 0",
        f"m=video {port} {'TCP/RTP/AVP' if tcp else 'RTP/AVP'} {PS_PAYLOAD_TYPE}",
        "a=recvonly",
        f"a=rtpmap:{PS_PAYLOAD_TYPE} PS/90000",
    ]
    if tcp:
        setup = "passive" if transport is GbTransport.TCP_PASSIVE else "active"
        lines += [f"a=setup:{setup}", "a=connection:new"]
    lines.append(f"y={ssrc}")
    return "\r\n".join(lines) + "\r\n"


def _address_type(host: str) -> str:
    try:
        return "IP6" if ipaddress.ip_address(host).version == 6 else "IP4"
    except ValueError:
        if _HOSTNAME.fullmatch(host):
            return "IP4"
        raise ValueError(f"bad media host {excerpt(host)}") from None


def parse_answer(text: str) -> SdpAnswer:
    """What a platform's SDP answer says about the stream; ValueError naming the problem."""
    if len(text.encode("utf-8", "replace")) > MAX_SDP_BYTES:
        raise ValueError(f"SDP answer over {MAX_SDP_BYTES} bytes")
    lines = [line.rstrip("\r") for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    if len(lines) > MAX_SDP_LINES:
        raise ValueError(f"SDP answer of more than {MAX_SDP_LINES} lines")
    if not lines or lines[0].strip() != "v=0":
        raise ValueError("SDP answer does not start with v=0")
    session_host: str | None = None
    media: list[str] | None = None  # the first m=video line's fields
    media_host: str | None = None
    ssrc: str | None = None
    setup: str | None = None
    for line in lines[1:]:
        kind, equals, value = line.partition("=")
        if not equals or len(kind) != 1:
            raise ValueError(f"bad SDP line {excerpt(line)}")
        if kind == "m":
            if media is not None:
                break  # only the first video description is ours
            fields = value.split()
            if fields[:1] == ["video"]:
                media = fields
        elif kind == "c":
            host = _connection_host(value)
            if media is None:
                session_host = host
            else:
                media_host = host
        elif kind == "y":
            ssrc = value.strip()
            if not _SSRC.fullmatch(ssrc):
                raise ValueError(f"y= is not a 10-digit SSRC: {excerpt(ssrc)}")
        elif kind == "a" and media is not None and value.startswith("setup:"):
            setup = value[len("setup:") :].strip().lower()
            if setup not in _SETUPS:
                raise ValueError(f"bad a=setup {excerpt(setup)}")
    if media is None:
        raise ValueError("SDP answer has no m=video line")
    port, tcp = _media_port(media)
    address = media_host or session_host
    if address is None:
        raise ValueError("SDP answer has no c= connection address")
    return SdpAnswer(host=address, port=port, ssrc=ssrc, tcp=tcp, setup=setup if tcp else None)


def _connection_host(value: str) -> str:
    fields = value.split()
    if len(fields) != 3 or fields[0] != "IN" or fields[1] not in ("IP4", "IP6"):
        raise ValueError(f"bad c= line {excerpt(value)}")
    host = fields[2].split("/", 1)[0]  # a multicast TTL suffix is not an address
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME.fullmatch(host):
            raise ValueError(f"bad c= address {excerpt(host)}") from None
    return host


def _media_port(fields: list[str]) -> tuple[int, bool]:
    if len(fields) < 4:
        raise ValueError("m=video line without port, protocol and format")
    port_text, proto = fields[1].split("/", 1)[0], fields[2].upper()
    if not re.fullmatch(r"[0-9]{1,5}", port_text) or not 0 < int(port_text) <= 65535:
        raise ValueError(f"bad m=video port {excerpt(fields[1])}")
    if proto not in _TCP_PROTOS and proto != "RTP/AVP":
        raise ValueError(f"m=video protocol {excerpt(fields[2])} is not RTP/AVP or TCP/RTP/AVP")
    return int(port_text), proto in _TCP_PROTOS
