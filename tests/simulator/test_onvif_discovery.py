"""The fleet's WS-Discovery responder answers Probes sent as a camera finder sends them
(multicast on the loopback interface, or unicast to one address), built with the WSDiscovery
library, from each device's own address; hostile datagrams are dropped unparsed."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from wsdiscovery.actions.probe import constructProbe, createProbeMessage
from wsdiscovery.message import parseSOAPMessage
from wsdiscovery.qname import QName

from surveillance.simulator.onvif_fleet import OnvifFleet
from surveillance.simulator.onvif_wsd import MULTICAST_GROUP, NS_NETWORK, WSD_PORT
from tests.onvif_net import test_subnet

pytestmark = pytest.mark.integration

SUBNET = test_subnet()
FIRST_HOST = 21
COUNT = 3
HOSTILE_INDEX = 2  # 127.0.S.23 answers discovery with a DOCTYPE bomb
WAIT_S = 5.0  # generous: a loaded CI machine
QUIET_S = 1.0  # how long "no answer" is waited for


@pytest.fixture(scope="module")
def fleet() -> Iterator[OnvifFleet]:
    with OnvifFleet.on_subnet(
        SUBNET,
        COUNT,
        first_host=FIRST_HOST,
        http_port=8082,
        faults={HOSTILE_INDEX: "wsd-hostile"},
        pictures=False,
    ) as running:
        yield running


def probe(types: list[QName]) -> tuple[str, bytes]:
    envelope = constructProbe(types, [])
    return envelope.getMessageId(), createProbeMessage(envelope).encode()


def prober(multicast: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    if multicast:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
    return sock


def answers(sock: socket.socket, want: set[str], within_s: float) -> dict[str, bytes]:
    """Datagrams from our subnet's devices (another xdist worker's fleet may answer a
    multicast too), until every address in ``want`` answered or the time is up."""
    got: dict[str, bytes] = {}
    deadline = time.monotonic() + within_s
    while not want <= got.keys() and (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data, (address, _) = sock.recvfrom(65536)
        except TimeoutError:
            break
        if address.startswith(SUBNET + "."):
            got[address] = data
    return got


def test_multicast_probe_gets_a_probe_match_from_each_device(fleet: OnvifFleet) -> None:
    addresses = {d.spec.address for d in fleet.devices}
    hostile_address = fleet.devices[HOSTILE_INDEX].spec.address
    message_id, message = probe([QName(NS_NETWORK, "NetworkVideoTransmitter", "dn")])
    with prober(multicast=True) as sock:
        sock.sendto(message, (MULTICAST_GROUP, WSD_PORT))
        got = answers(sock, addresses, WAIT_S)
    assert got.keys() == addresses
    for device in fleet.devices:
        data = got[device.spec.address]
        if device.spec.address == hostile_address:
            assert b"<!DOCTYPE" in data and b'SYSTEM "file:///etc/passwd"' in data
            assert b"&lol9;" in data  # never parsed here: it is a bomb
            continue
        match = parseSOAPMessage(data, device.spec.address)
        assert match.getRelatesTo() == message_id
        (found,) = match.getProbeResolveMatches()
        assert found.getEPR() == device.spec.endpoint_reference
        assert found.getXAddrs() == [device.url]
        assert {t.getLocalname() for t in found.getTypes()} == {"NetworkVideoTransmitter", "Device"}
        scopes = {s.getValue() for s in found.getScopes()}
        assert b"onvif://www.onvif.org/name/PTZ%20camera%20" in data  # quoted on the wire
        assert f"onvif://www.onvif.org/name/{device.spec.name}" in scopes
        assert "onvif://www.onvif.org/hardware/SimPTZ" in scopes


def test_unicast_probe_is_answered_by_that_device_alone(fleet: OnvifFleet) -> None:
    target = fleet.devices[1]
    with prober(multicast=False) as sock:
        # A DTD is dropped before parsing; the responder goes on answering.
        sock.sendto(
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>',
            (target.spec.address, WSD_PORT),
        )
        sock.sendto(b"\x00not xml at all", (target.spec.address, WSD_PORT))
        message_id, message = probe([QName("http://www.onvif.org/ver10/device/wsdl", "Device")])
        sock.sendto(message, (target.spec.address, WSD_PORT))
        got = answers(sock, {target.spec.address}, WAIT_S)
        assert got.keys() == {target.spec.address}
        assert parseSOAPMessage(got[target.spec.address], "").getRelatesTo() == message_id
        _, printer = probe([QName("urn:example:printers", "Printer")])
        sock.sendto(printer, (target.spec.address, WSD_PORT))
        assert answers(sock, {target.spec.address}, QUIET_S) == {}  # not a type we are
