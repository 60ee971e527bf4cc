"""WS-Discovery Probe over our own asyncio UDP sockets: multicast on chosen interfaces and
unicast to each named host, at a bounded rate, until a deadline.

Messages are built and read with the WSDiscovery library (its builders and parsers only;
its threaded daemon is not used). A datagram is read only if it could be a ProbeMatches
answer to one of our probes: one that declares a DTD or entities is dropped unread (plain
minidom, which the library parses with, expands internal entities; ours is defusedxml's,
which refuses a DTD as well), a malformed one is dropped with its reason, one answering
someone else's probe is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import string
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.parsers.expat import ExpatError

from defusedxml import DefusedXmlException
from defusedxml import minidom as defused_minidom
from wsdiscovery.actions.probe import constructProbe, createProbeMessage
from wsdiscovery.actions.probematch import parseProbeMatchMessage
from wsdiscovery.namespaces import NS_ACTION_PROBE_MATCH, NS_ADDRESSING
from wsdiscovery.qname import QName

from surveillance.onvif.records import DiscoveredDevice, FoundBy

log = logging.getLogger(__name__)

MULTICAST_GROUP = "239.255.255.250"  # SOAP-over-UDP (OASIS 2009) s.3.3
WSD_PORT = 3702
# ONVIF Core s.7.3: a client probes for this device type.
_NVT = QName("http://www.onvif.org/ver10/network/wsdl", "NetworkVideoTransmitter", "dn")
# SOAP-over-UDP appendix I: a multicast message is sent twice (UDP loses datagrams).
_MULTICAST_REPEAT = 2
_REPEAT_GAP_S = 0.1
_MAX_DROPPED = 256  # reasons kept per run; a flood counts but is not stored
_MAX_ITEMS = 32  # XAddrs / scopes kept per device
_MAX_ITEM_CHARS = 512
_HOSTILE = (b"<!DOCTYPE", b"<!ENTITY")
_HOSTILE_WHY = "its WS-Discovery answer declares a DTD or entities (dropped unread)"


@dataclass(frozen=True)
class ProbeOutcome:
    devices: tuple[DiscoveredDevice, ...]
    dropped: tuple[tuple[str, str], ...]  # (address, why) of hostile or malformed answers
    probes_sent: int
    not_probed: int = 0  # unicast addresses the deadline came before
    # Each unicast host named as a name, and the address it was probed at.
    resolved: dict[str, str] = field(default_factory=dict)


@dataclass
class _Run:
    """What one probe run sent and heard."""

    on_device: Callable[[DiscoveredDevice], None] | None = None
    sent: dict[str, FoundBy] = field(default_factory=dict)  # MessageID -> how it went
    devices: dict[str, DiscoveredDevice] = field(default_factory=dict)  # by endpoint
    dropped: list[tuple[str, str]] = field(default_factory=list)
    dropped_count: int = 0
    resolved: dict[str, str] = field(default_factory=dict)  # name -> address probed

    def drop(self, address: str, why: str) -> None:
        self.dropped_count += 1
        if len(self.dropped) < _MAX_DROPPED and (address, why) not in self.dropped:
            self.dropped.append((address, why))

    def heard(self, data: bytes, address: str) -> None:
        if any(marker in data for marker in _HOSTILE):
            self.drop(address, _HOSTILE_WHY)
            return
        try:
            # defusedxml's minidom refuses a DTD too (one in UTF-16 passes the byte check);
            # bytes, not str: expat honours the encoding the datagram declares.
            dom = defused_minidom.parseString(data, forbid_dtd=True)  # type: ignore[arg-type]
        except DefusedXmlException:
            self.drop(address, _HOSTILE_WHY)
            return
        except (ExpatError, ValueError):
            self.drop(address, "its WS-Discovery answer is not well-formed XML")
            return
        try:
            action = _text(dom, NS_ADDRESSING, "Action")
            if action != NS_ACTION_PROBE_MATCH:
                return  # a Hello, Bye or Probe from someone else: not an answer to us
            relates_to = _text(dom, NS_ADDRESSING, "RelatesTo")
            if relates_to not in self.sent:
                return  # an answer to another client's probe
            envelope = parseProbeMatchMessage(dom)
        except (IndexError, AttributeError, TypeError, ValueError):
            self.drop(address, "its WS-Discovery answer is not a valid ProbeMatches message")
            return
        found_by = self.sent[relates_to]
        for match in envelope.getProbeResolveMatches():
            endpoint = _bounded(str(match.getEPR()))
            if endpoint and endpoint not in self.devices:
                device = DiscoveredDevice(
                    address=address,
                    endpoint=endpoint,
                    xaddrs=_items(match.getXAddrs()),
                    scopes=_items(scope.getValue() for scope in match.getScopes()),
                    found_by=found_by,
                )
                self.devices[endpoint] = device
                if self.on_device is not None:
                    self.on_device(device)


def _text(dom: Any, namespace: str, name: str) -> str:
    return str(dom.getElementsByTagNameNS(namespace, name)[0].firstChild.data.strip())


def _bounded(text: str) -> str:
    """``text`` (a URI: an address or a scope, still percent-encoded) cut to
    :data:`_MAX_ITEM_CHARS` on a whole character: never inside a ``%XX`` escape nor inside
    the escapes of one UTF-8 character (RFC 3986 s.2.5), so that unquoting the kept part
    gives text, not a replacement character and a stray ``%B``."""
    if len(text) <= _MAX_ITEM_CHARS:
        return text
    cut = text[:_MAX_ITEM_CHARS]
    percent = cut.rfind("%", len(cut) - 2)
    if percent != -1:  # "...%" or "...%D": half an escape
        cut = cut[:percent]
    escaped = _trailing_escaped_bytes(cut)
    for index in range(len(escaped) - 1, -1, -1):
        byte = escaped[index]
        if byte & 0xC0 == 0x80:
            continue  # a continuation byte: its lead byte is further back
        if byte >= 0xC0:  # the lead byte of a character of 2, 3 or 4 bytes
            length = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            kept = len(escaped) - index
            if kept < length:
                cut = cut[: len(cut) - 3 * kept]
        break
    return cut


def _trailing_escaped_bytes(text: str) -> bytes:
    """The bytes of the ``%XX`` escapes ``text`` ends with (at most one character's)."""
    found: list[int] = []
    end = len(text)
    while len(found) < 4 and end >= 3 and text[end - 3] == "%":
        digits = text[end - 2 : end]
        if not all(digit in string.hexdigits for digit in digits):
            break
        found.insert(0, int(digits, 16))
        end -= 3
    return bytes(found)


def _items(values: Any) -> tuple[str, ...]:
    return tuple(_bounded(str(value)) for value, _ in zip(values, range(_MAX_ITEMS), strict=False))


class _Listener(asyncio.DatagramProtocol):
    def __init__(self, run: _Run) -> None:
        self._run = run

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        try:
            self._run.heard(data, str(addr[0]))
        except Exception:
            # Whatever a datagram holds, it must not end the listening (asyncio would
            # only log it, but the reason belongs in the run's report).
            log.debug("WS-Discovery answer from %s could not be read", addr[0], exc_info=True)
            self._run.drop(str(addr[0]), "its WS-Discovery answer could not be read")

    def error_received(self, exc: Exception) -> None:
        # An ICMP "port unreachable" for a unicast probe: that host has no WS-Discovery.
        log.debug("WS-Discovery socket error: %s", exc)


def _probe_message(message_id: str) -> bytes:
    envelope = constructProbe([_NVT], [])
    envelope.setMessageId(message_id)
    return str(createProbeMessage(envelope)).encode("utf-8")


def _socket(bind: str, *, multicast_interface: str | None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        if multicast_interface is not None:
            sock.setsockopt(
                socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(multicast_interface)
            )
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        sock.bind((bind, 0))
    except OSError:
        sock.close()
        raise
    return sock


async def _resolve(hosts: Sequence[str], run: _Run, deadline: float) -> list[str]:
    """IP addresses of ``hosts``; names are looked up without blocking the loop (a
    datagram socket's sendto would look them up synchronously)."""
    loop = asyncio.get_running_loop()
    addresses: list[str] = []
    for host in hosts:
        try:
            addresses.append(str(ipaddress.IPv4Address(host)))
            continue
        except ValueError:
            pass
        try:
            async with asyncio.timeout(max(0.0, deadline - loop.time())):
                infos = await loop.getaddrinfo(host, WSD_PORT, family=socket.AF_INET)
            addresses.append(str(infos[0][4][0]))
            run.resolved[host] = addresses[-1]
        except (OSError, TimeoutError, IndexError):
            run.drop(host, "the name does not resolve to an IPv4 address")
    return addresses


async def probe(
    *,
    unicast: Sequence[str],
    multicast_interfaces: Sequence[str],
    probes_per_s: float,
    answer_wait_s: float,
    deadline: float,
    on_device: Callable[[DiscoveredDevice], None] | None = None,
    on_sent: Callable[[int], None] | None = None,
) -> ProbeOutcome:
    """Probes, then listens ``answer_wait_s`` after the last probe, never past ``deadline``
    (a time of the running loop's clock, ``loop.time()``).

    ``unicast``: IPv4 addresses or names, each sent one Probe to port 3702;
    ``multicast_interfaces``: local IPv4 addresses to send the multicast Probe from. At most
    ``probes_per_s`` datagrams a second leave, so a /22 does not flood a camera network.
    ``on_device``: called with each device as its first answer comes (on the loop), so its
    inspection need not wait for the last probe. ``on_sent``: called with the number of
    probes sent so far after each one (a sweep's progress, for whoever watches it)."""
    loop = asyncio.get_running_loop()
    run = _Run(on_device)
    transports: list[asyncio.DatagramTransport] = []
    gap = 1.0 / max(probes_per_s, 0.1)
    next_send = loop.time()
    sent = 0
    not_probed = 0

    async def send(
        transport: asyncio.DatagramTransport, to: str, found_by: FoundBy, message_id: str = ""
    ) -> bool:
        nonlocal next_send, sent
        now = loop.time()
        if next_send > now:
            await asyncio.sleep(next_send - now)
        if loop.time() >= deadline:
            return False
        message_id = message_id or uuid.uuid4().urn
        run.sent[message_id] = found_by
        transport.sendto(_probe_message(message_id), (to, WSD_PORT))
        sent += 1
        if on_sent is not None:
            on_sent(sent)
        next_send = max(next_send + gap, loop.time())
        return True

    try:
        multicast: list[tuple[asyncio.DatagramTransport, str]] = []
        for interface in multicast_interfaces:
            try:
                sock = _socket(interface, multicast_interface=interface)
            except OSError as exc:
                run.drop(interface, f"cannot send multicast from this interface ({exc.strerror})")
                continue
            transport, _ = await loop.create_datagram_endpoint(lambda: _Listener(run), sock=sock)
            transports.append(transport)
            multicast.append((transport, uuid.uuid4().urn))
        for transport, message_id in multicast:
            await send(transport, MULTICAST_GROUP, "multicast", message_id)
        addresses = await _resolve(unicast, run, deadline)
        if addresses:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Listener(run), sock=_socket("0.0.0.0", multicast_interface=None)
            )
            transports.append(transport)
            for index, address in enumerate(addresses):
                if not await send(transport, address, "unicast"):
                    not_probed = len(addresses) - index
                    break
        if multicast:  # the repeat (same MessageID: devices answer once), after a pause
            await asyncio.sleep(max(0.0, min(_REPEAT_GAP_S, deadline - loop.time())))
            for transport, message_id in multicast:
                for _ in range(_MULTICAST_REPEAT - 1):
                    await send(transport, MULTICAST_GROUP, "multicast", message_id)
        await asyncio.sleep(max(0.0, min(loop.time() + answer_wait_s, deadline) - loop.time()))
    finally:
        for transport in transports:
            with contextlib.suppress(OSError):
                transport.close()
    if run.dropped_count:  # answers, names that do not resolve, interfaces that cannot send
        first, why = run.dropped[0]
        log.info("WS-Discovery: %d dropped, first %s: %s", run.dropped_count, first, why)
    if not_probed:
        log.info("WS-Discovery: the time limit came before %d addresses were probed", not_probed)
    return ProbeOutcome(
        tuple(run.devices.values()), tuple(run.dropped), sent, not_probed, dict(run.resolved)
    )
