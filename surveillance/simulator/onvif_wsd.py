"""WS-Discovery responder for a fleet of simulated ONVIF devices (ONVIF Core 7.3; WS-Discovery
2005/04 as ONVIF uses it).

One multicast socket per fleet (239.255.255.250:3702, SO_REUSEADDR so that every fleet and
listener on the machine gets a copy) and one unicast socket per device (its address, port
3702). A Probe asking for no types, or for NetworkVideoTransmitter / Device, gets a
ProbeMatch per device, sent from that device's own socket to the prober, so that the
prober sees each answer come from the device's address as on a real network. Messages
are built and parsed with the WSDiscovery library; its threaded daemon is not used.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import socket
import struct
from collections.abc import Sequence
from typing import Any

from wsdiscovery.actions.probematch import (
    constructProbeMatch,
    createProbeMatchMessage,
)
from wsdiscovery.envelope import SoapEnvelope
from wsdiscovery.message import parseSOAPMessage
from wsdiscovery.namespaces import NS_ACTION_PROBE
from wsdiscovery.qname import QName
from wsdiscovery.scope import Scope
from wsdiscovery.service import Service
from wsdiscovery.util import matchesFilter

from surveillance.simulator import onvif_faults as faults
from surveillance.simulator.onvif_answers import scope_items
from surveillance.simulator.onvif_device import SimulatedDevice
from surveillance.simulator.onvif_soap import NS

log = logging.getLogger(__name__)

MULTICAST_GROUP = "239.255.255.250"
WSD_PORT = 3702
MAX_DATAGRAM_BYTES = 16 * 1024  # a Probe is well under 1 KiB; anything larger is dropped
NS_NETWORK = "http://www.onvif.org/ver10/network/wsdl"
MATCHED_TYPES = frozenset({"NetworkVideoTransmitter", "Device"})


def device_service(device: SimulatedDevice) -> Any:
    """The WSDiscovery library's description of a device (what its ProbeMatch says)."""
    types = [QName(NS_NETWORK, "NetworkVideoTransmitter", "dn"), QName(NS["tds"], "Device", "tds")]
    scopes = [Scope(item) for item in scope_items(device.spec)]
    return Service(types, scopes, [device.url], device.spec.endpoint_reference, 1)


def read_probe(data: bytes, sender: str) -> Any | None:
    """The Probe in a datagram, or None. A DTD is refused before any parsing: the library
    parses with minidom, which expands internal entities (a bomb in one datagram)."""
    if len(data) > MAX_DATAGRAM_BYTES or b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        log.debug("WS-Discovery: dropped a hostile or oversized datagram from %s", sender)
        return None
    try:
        message = parseSOAPMessage(data, sender)
    except Exception:  # the library raises whatever minidom and its lookups raise
        return None
    if not isinstance(message, SoapEnvelope) or message.getAction() != NS_ACTION_PROBE:
        return None
    return message


def probe_matches(probe: Any, device: SimulatedDevice) -> bool:
    types = probe.getTypes()
    if types and not any(t.getLocalname() in MATCHED_TYPES for t in types):
        return False
    return bool(matchesFilter(device_service(device), None, probe.getScopes() or None))


def probe_match_message(probe: Any, device: SimulatedDevice) -> bytes:
    state = random.getstate()  # constructProbeMatch reseeds the global generator
    try:
        envelope = constructProbeMatch([device_service(device)], probe.getMessageId())
    finally:
        random.setstate(state)
    message = createProbeMatchMessage(envelope)
    data = message.encode() if isinstance(message, str) else bytes(message)
    if device.fault == "wsd-hostile":
        return faults.hostile(data)
    return data


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, responder: WsdResponder, devices: Sequence[SimulatedDevice]) -> None:
        self.responder = responder
        self.devices = devices

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        probe = read_probe(data, str(addr[0]))
        if probe is None:
            return
        for device in self.devices:
            if probe_matches(probe, device):
                self.responder.answer(device, probe, (str(addr[0]), int(addr[1])))


class WsdResponder:
    def __init__(self, devices: Sequence[SimulatedDevice], *, interface: str = "127.0.0.1") -> None:
        self.devices = list(devices)
        self.interface = interface
        self._transports: dict[str, asyncio.DatagramTransport] = {}  # device address -> socket
        self._multicast: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            for device in self.devices:
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((device.spec.address, WSD_PORT))
                transport, _ = await loop.create_datagram_endpoint(
                    functools.partial(_Receiver, self, [device]), sock=sock
                )
                self._transports[device.spec.address] = transport
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Receiver(self, self.devices), sock=self._multicast_socket()
            )
            self._multicast = transport
        except BaseException:
            self.stop()
            raise

    def _multicast_socket(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((MULTICAST_GROUP, WSD_PORT))
        membership = struct.pack(
            "4s4s", socket.inet_aton(MULTICAST_GROUP), socket.inet_aton(self.interface)
        )
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
        return sock

    def answer(self, device: SimulatedDevice, probe: Any, to: tuple[str, int]) -> None:
        transport = self._transports.get(device.spec.address)
        if transport is not None and not transport.is_closing():
            transport.sendto(probe_match_message(probe, device), to)

    def stop(self) -> None:
        for transport in self._transports.values():
            transport.close()
        self._transports.clear()
        if self._multicast is not None:
            self._multicast.close()
            self._multicast = None
