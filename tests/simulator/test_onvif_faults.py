"""What faulty simulated ONVIF devices send (the device side; the client's handling of it is
tested with the client)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from lxml import etree

from surveillance.simulator.onvif_device import SimulatedDevice
from surveillance.simulator.onvif_fleet import OnvifFleet
from surveillance.simulator.onvif_soap import MAX_REQUEST_BYTES, el, envelope
from surveillance.simulator.onvif_specs import HUGE_ANSWER_BYTES, OnvifDeviceSpec
from tests.onvif_net import test_subnet

pytestmark = pytest.mark.integration

ADDRESS = f"{test_subnet()}.31"
SAFE = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)
ASK_CLOCK = envelope(el("tds:GetSystemDateAndTime"))
HEADERS = {"Content-Type": "application/soap+xml; charset=utf-8"}
NO_ANSWER_S = 1.0  # "does not answer within": only ever too generous on a loaded machine


@pytest.fixture(scope="module")
def fleet() -> Iterator[OnvifFleet]:
    with OnvifFleet([OnvifDeviceSpec(ADDRESS, 8083)], pictures=False, discovery=False) as running:
        yield running


@pytest.fixture
async def device(fleet: OnvifFleet) -> AsyncIterator[SimulatedDevice]:
    simulated = fleet.device(ADDRESS)
    yield simulated
    simulated.set_fault(None)


async def post(
    device: SimulatedDevice, body: bytes = ASK_CLOCK, timeout_s: float = 30
) -> tuple[int, bytes]:
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(device.url, data=body, headers=HEADERS) as response,
    ):
        return response.status, await response.read()


async def test_hostile_xml_carries_an_external_entity_and_a_bomb(device: SimulatedDevice) -> None:
    device.set_fault("hostile-xml")
    status, body = await post(device)
    assert status == 200
    assert b'<!ENTITY xxe SYSTEM "file:///etc/passwd">' in body
    assert b'<!ENTITY lol9 "&lol8;&lol8;' in body and b"&xxe;&lol9;" in body
    # Around the DTD and the references, it is the answer asked for.
    assert b"<tds:GetSystemDateAndTimeResponse>" in body and body.startswith(b"<?xml")


async def test_malformed_and_not_onvif_answers(device: SimulatedDevice) -> None:
    device.set_fault("malformed")
    status, body = await post(device)
    assert status == 200 and body.startswith(b"<?xml")
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(body, SAFE)
    device.set_fault("not-onvif")
    status, body = await post(device)
    root = etree.fromstring(body, SAFE)
    assert status == 200 and root.tag == "{http://www.w3.org/2003/05/soap-envelope}Envelope"
    (answer,) = root.find("{http://www.w3.org/2003/05/soap-envelope}Body")
    assert etree.QName(answer).namespace == "urn:example:not-onvif"


async def test_hang_and_slow_devices(device: SimulatedDevice) -> None:
    device.set_fault("hang")
    with pytest.raises(TimeoutError):
        await post(device, timeout_s=NO_ANSWER_S)
    device.set_fault("slow")
    device.slow_answer_s = 1.5
    started = time.monotonic()
    status, body = await post(device)
    assert time.monotonic() - started >= 1.5
    assert status == 200 and b"GetSystemDateAndTimeResponse" in body
    device.slow_answer_s = 20.0
    device.set_fault(None)
    assert (await post(device))[0] == 200  # the hung request did not block the server


async def test_huge_answer_is_streamed_without_a_length(device: SimulatedDevice) -> None:
    device.set_fault("huge")
    timeout = aiohttp.ClientTimeout(total=60)
    size = 0
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(device.url, data=ASK_CLOCK, headers=HEADERS) as response,
    ):
        assert response.headers.get("Content-Length") is None
        async for chunk in response.content.iter_chunked(1 << 20):
            size += len(chunk)
    assert size == HUGE_ANSWER_BYTES


async def test_wsd_hostile_device_answers_soap_properly(device: SimulatedDevice) -> None:
    device.set_fault("wsd-hostile")
    status, body = await post(device)
    assert status == 200 and b"<!DOCTYPE" not in body


async def test_hostile_requests_are_refused(device: SimulatedDevice) -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY a "aaaa">]>' + ASK_CLOCK.split(b"?>", 1)[1]
    status, body = await post(device, bomb)
    assert status == 400 and b"WellFormed" in body
    status, _ = await post(device, b"<x>" + b"a" * MAX_REQUEST_BYTES + b"</x>")
    assert status == 413
    status, body = await post(device, b"<not-closed>")
    assert status == 400 and b"WellFormed" in body
    with pytest.raises(ValueError):
        device.set_fault("no-such-fault")
